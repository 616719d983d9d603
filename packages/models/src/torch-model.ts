import type * as tfl from '@tensorflow/tfjs-layers';
import { parseStateDict, type StateDict } from './state-dict.js';
import { looksLikeTorchResNet, torchResNetFromStateDict } from './torch-resnet.js';
import { torchVggFromStateDict } from './torch-vgg.js';
import { torchVitFromStateDict } from './torch-vit.js';

/** Options of {@link importTorchModel}: what the VGG and ResNet importers share. */
export interface TorchModelOptions {
  /** Input height and width in pixels (a number: square). Default 224. */
  inputSize?: number | [number, number];
  /** Input [height, width, channels] (instead of `inputSize`). */
  inputShape?: [number, number, number];
  /** Attention heads of a ViT that is none of torchvision's configurations (not stored in the weights; see
   * `TorchVitOptions.numHeads`). Ignored for VGGs and ResNets. */
  numHeads?: number;
}

/**
 * Reads a torchvision model of a layout that can be inferred from its state dict: a ViT (see `importTorchVit`;
 * told by its `conv_proj` patch embedding), a ResNet (see `importTorchResNet`; told by its `layerS.B.convK`
 * tensors) or else a VGG (see `importTorchVgg`, whose error
 * says what the file holds when it is neither). Layers get PyTorch's module names either way.
 *
 * @returns a new model that the caller owns
 * @throws CrpError the errors of the two importers and of the file readers
 */
export async function importTorchModel(
  source: Uint8Array | StateDict,
  options: TorchModelOptions = {},
): Promise<tfl.LayersModel> {
  const sd = source instanceof Uint8Array ? parseStateDict(source) : source;
  if (sd.names.some((n) => /(^|\.)conv_proj\.weight$/.test(n))) {
    const size = options.inputShape
      ? ([options.inputShape[0], options.inputShape[1]] as [number, number])
      : options.inputSize;
    return torchVitFromStateDict(sd, {
      ...(size === undefined ? {} : { imageSize: size }),
      ...(options.numHeads === undefined ? {} : { numHeads: options.numHeads }),
    });
  }
  return looksLikeTorchResNet(sd)
    ? torchResNetFromStateDict(sd, options)
    : torchVggFromStateDict(sd, options);
}
