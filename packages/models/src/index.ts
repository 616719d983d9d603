// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
// @crp/models: models, data and training for the CRP toolkit, in Node and in browsers. Reading and writing files
// (image folders, MNIST, model and weight files, checkpoints) is in '@crp/models/node'; importer plumbing that only
// the toolkit's own packages and tests need is in '@crp/models/internal' (unstable).

// labelled images in memory: the Dataset of the whole toolkit, and ways to cut it
export {
  checkDataset,
  type Dataset,
  disposeDataset,
  gatherDataset,
  type SplitOptions,
  splitDataset,
} from './dataset.js';

// image files to model input: the one preprocessing definition (channels, scale, resize, normalise)
export { IMAGENET, type PreprocessOptions, preprocess } from './preprocess.js';

// model builders: the VGG family, Vision Transformers (torchvision's names, layers the engine explains)
export { smallVgg, VGG_CONFIGS, type VggName, type VggOptions, vgg, vggFromBlocks } from './vgg.js';
export { VIT_CONFIGS, type VitConfig, type VitName, vit, tokenHeatmap } from './vit.js';

// torchvision VGGs from PyTorch weights: .pth files of torch.save (read without Python) and safetensors, told
// apart by their bytes; PyTorch's adaptive average pool for any input size
export {
  importTorchVgg,
  type TorchVggFeature,
  type TorchVggLayout,
  type TorchVggOptions,
  torchVggFromStateDict,
  torchVggLayout,
} from './torch-vgg.js';
export {
  importTorchVit,
  type TorchVitLayout,
  type TorchVitOptions,
  torchVitFromStateDict,
  torchVitLayout,
} from './torch-vit.js';
// torchvision ResNets (resnet18 ... resnet152, wide_resnet) from the same files, as functional models with
// PyTorch's module names
export {
  importTorchResNet,
  type TorchResNetBlock,
  type TorchResNetLayout,
  type TorchResNetOptions,
  type TorchResNetSpec,
  torchResNetFromStateDict,
  torchResNetLayout,
  torchResNetShapes,
} from './torch-resnet.js';
export { importTorchModel, type TorchModelOptions } from './torch-model.js';
// back to PyTorch: a state_dict .pth from a model with PyTorch's layer names
export { encodeTorchStateDict, type TorchTensor, torchStateDictOf } from './pth-writer.js';
export { parseStateDict, type StateDict } from './state-dict.js';
export { type PthContent, type PthEntry, PthFile, type TorchDtype } from './pth.js';
export {
  SAFETENSORS_DTYPES,
  type SafetensorsDtype,
  type SafetensorsEntry,
  SafetensorsFile,
} from './safetensors.js';
export {
  AdaptiveAveragePooling2D,
  type AdaptiveAveragePooling2DArgs,
  adaptiveAveragePooling2d,
} from './adaptive-average-pooling-2d.js';

// training: the LAMB optimiser, the training loop with early stopping and checkpoints, evaluation
export { Lamb, type LambConfig } from './lamb.js';
export {
  type EarlyStopping,
  type Evaluation,
  evaluate,
  type TrainOptions,
  type TrainProgress,
  type TrainResult,
  train,
} from './train.js';
export {
  type Checkpoint,
  type CheckpointState,
  type CheckpointStore,
  type EpochLog,
  memoryCheckpoints,
} from './checkpoint.js';
export { registerTrainingKernels, type TrainingKernelOptions } from './training-kernels.js';
export {
  type LayerSelection,
  planTrainingMemory,
  selectTrainLayers,
  type TrainingMemoryOptions,
  type TrainingMemoryPlan,
  type TrainLayers,
} from './training-memory.js';
// any CNN or torchvision ViT from ONNX (torch.onnx.export, tf2onnx; opsets 11-20), read by a small protobuf decoder
export {
  importOnnx,
  ONNX_OPSETS,
  ONNX_SUPPORTED_OPS,
  ONNX_VIT_SUPPORTED_OPS,
  type OnnxImportOptions,
} from './onnx-import.js';
// back to the user's format: the source .onnx with a fine-tuned or pruned model's weights
export { encodeOnnx } from './onnx-writer.js';
export {
  type OnnxAttribute,
  type OnnxDim,
  type OnnxGraph,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
  type OnnxValueInfo,
  parseOnnxModel,
} from './onnx-proto.js';
export {
  PaddedMaxPooling2D,
  type PaddedMaxPooling2DArgs,
  paddedMaxPooling2d,
} from './padded-max-pooling-2d.js';
export { HardSigmoid, type HardSigmoidArgs, HardSwish } from './hard-activations.js';
