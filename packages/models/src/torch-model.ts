import { CrpError } from '@crp/common';
import type * as tfl from '@tensorflow/tfjs-layers';
import { parseStateDict, type StateDict } from './state-dict.js';
import { looksLikeTorchResNet, torchResNetFromStateDict } from './torch-resnet.js';
import { looksLikeTorchVgg, torchVggFromStateDict, whatIsIn } from './torch-vgg.js';
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
 * tensors) or a VGG (see `importTorchVgg`; told by its `features.N` and `classifier` modules). Layers get
 * PyTorch's module names either way.
 *
 * @returns a new model that the caller owns
 * @throws CrpError `unsupported-model` for a state dict of none of these layouts (naming what it holds and
 *   pointing to ONNX), the errors of the importers and of the file readers
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
  if (looksLikeTorchResNet(sd)) return torchResNetFromStateDict(sd, options);
  if (looksLikeTorchVgg(sd)) return torchVggFromStateDict(sd, options);
  // neither: say what the file holds and which layouts are inferred, not only the VGG's
  throw new CrpError(
    'unsupported-model',
    `no architecture the toolkit infers from a state dict: ${whatIsIn(sd)}. Inferred from the keys: torchvision's VGG ('features.N', 'classifier.N'), ResNet ('conv1', 'layerS.B.convK', 'fc'; also wide and ResNeXt) and ViT ('conv_proj', 'encoder.layers.*'), under any prefix such as 'module.'; for other architectures export the model to ONNX (torch.onnx.export(model, x, 'model.onnx', opset_version=17)) and read the .onnx`,
    { details: { tensors: sd.names.length } },
  );
}
