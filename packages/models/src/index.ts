export {
  AdaptiveAveragePooling2D,
  type AdaptiveAveragePooling2DArgs,
  adaptiveAveragePooling2d,
} from './adaptive-average-pooling-2d.js';
export {
  checkDataset,
  type Dataset,
  disposeDataset,
  gatherDataset,
  normalizePixels,
  type PixelOptions,
  type SplitOptions,
  splitDataset,
} from './dataset.js';
export { type FileSystemOptions, fileSystem, registerFileSystemRouter } from './file-system.js';
export { type ImageFolderOptions, imageFolder } from './image-folder.js';
export { Lamb, type LambConfig } from './lamb.js';
export { type MnistOptions, mnist, mnistSize } from './mnist.js';
export { PTH_FLOAT_DTYPES, type PthContent, type PthEntry, PthFile, type TorchDtype } from './pth.js';
export {
  SAFETENSORS_DTYPES,
  type SafetensorsDtype,
  type SafetensorsEntry,
  SafetensorsFile,
} from './safetensors.js';
export { parseStateDict, readStateDict, type StateDict } from './state-dict.js';
export {
  importTorchVgg,
  type TorchVggFeature,
  type TorchVggLayout,
  type TorchVggOptions,
  torchVggFromSafetensors,
  torchVggFromStateDict,
  torchVggLayout,
} from './torch-vgg.js';
export {
  type EpochLog,
  type Evaluation,
  evaluate,
  type TrainOptions,
  type TrainProgress,
  type TrainResult,
  train,
} from './train.js';
export { registerTrainingKernels, type TrainingKernelOptions } from './training-kernels.js';
export { smallVgg, VGG_CONFIGS, type VggName, type VggOptions, vgg, vggFromBlocks } from './vgg.js';
export { type StateDictFormat, sniffFormat } from './weights-format.js';
