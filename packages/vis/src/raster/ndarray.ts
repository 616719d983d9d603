import ndarray from 'ndarray';
import { assertRasterImage, type RasterImage } from './raster.js';

/**
 * A view of an image as an `ndarray` of shape `[height, width, channels]` sharing the image's bytes (pass it
 * back through {@link toRasterImage} or any function that takes an {@link ArrayInput}).
 */
export function rasterToNdarray(image: RasterImage): ndarray.NdArray<Uint8Array> {
  assertRasterImage(image);
  return ndarray(image.data, [image.height, image.width, image.channels]);
}
