import type { PatchEmbedding } from '@crp/attribution';
import { drawPatchGrid, overlayHeatmap, type RasterImage } from '@crp/vis';
import * as tf from '@tensorflow/tfjs-core';

/**
 * The token heatmap of image `i` over its picture, for a ViT: the relevance at the patch embedding's output
 * ([N, rows, cols, D]) summed over the features is one value per patch; each patch is upsampled to its block of
 * the picture's pixels (nearest, so a patch is one colour), overlaid as the pixel heatmaps of CNNs are, and the
 * patch grid is drawn on top, so the report shows which token each block is.
 */
export function tokenOverlay(
  picture: RasterImage,
  relevance: tf.Tensor,
  i: number,
  embedding: PatchEmbedding,
): RasterImage {
  const heat = tf.tidy(() => {
    const tokens = tf.sum(tf.slice(relevance, i, 1), [0, 3]) as tf.Tensor2D;
    const up = tf.image.resizeNearestNeighbor(tf.expandDims(tokens, -1) as tf.Tensor3D, [
      picture.height,
      picture.width,
    ]);
    return tf.squeeze(up, [2]) as tf.Tensor2D;
  });
  try {
    return drawPatchGrid(overlayHeatmap(picture, heat, { alpha: 0.6 }), { grid: embedding.grid });
  } finally {
    heat.dispose();
  }
}
