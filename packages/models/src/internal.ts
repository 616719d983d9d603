// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
// @crp/models/internal: importer plumbing shared by the toolkit's own packages and tests (conformance, the
// models' own tests). Unstable: not part of the public API, may change in any release.

// ViT weights by torchvision's parameter names, and the names of its blocks and patch grid (the ViT importer's)
export { setVitWeights, vitBlockPrefix, vitParameterSlots, vitPatchGrid } from './vit.js';

// whether a state dict is a torchvision ResNet (the dispatch of importTorchModel)
export { looksLikeTorchResNet } from './torch-resnet.js';

// the weight-file formats, told apart by their bytes, and the dtypes a .pth is read in
export { type StateDictFormat, sniffFormat } from './weights-format.js';
export { PTH_FLOAT_DTYPES } from './pth.js';

// ONNX tensors: data types and decoded values
export { ONNX_DATA_TYPES, onnxTensorValues } from './onnx-proto.js';
