// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
import * as zlib from 'node:zlib';
import { useNativeZip } from './zip-archive.js';
// @crp/models/node: the Node-only part of @crp/models, everything that reads or writes files. Browser bundles
// import '@crp/models' only.

// data sets from disk: image folders (one sub-folder per class) and the MNIST digits of the mnist package
export {
  type ImageFolderListing,
  type ImageFolderListOptions,
  type ImageFolderOptions,
  imageFolder,
  listImageFolder,
  readImages,
  type SkippedImage,
} from './image-folder.js';
export { type MnistOptions, mnist, mnistSize } from './mnist.js';
export {
  type LoadModelOptions,
  loadModel,
  readSafetensors,
  readStateDict,
  readTorchModel,
  readTorchResNet,
  readTorchVgg,
  readTorchVit,
  writeTorchStateDict,
  type SavedModelInfo,
  saveModel,
} from './model-files.js';

// any CNN in an .onnx file, with its external data files
export { encodeOnnxFile, readOnnx, writeOnnx } from './onnx-file.js';

// models on disk: TF.js model.json + weights, torchvision VGGs in safetensors files
export { type FileSystemOptions, fileSystem, registerFileSystemRouter } from './file-system.js';

// the zip reader of .pth files uses node:zlib here (native CRC-32, inflate of deflated entries)
useNativeZip(zlib);

// training checkpoints in a directory
export { fileCheckpoints } from './checkpoint-files.js';
