// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
// @crp/lrp/internal: the engine's ops and tables that the toolkit's own packages reuse (@crp/models' PyTorch pool
// layer, @crp/attribution's receptive fields, @crp/pruning's layer walk). Unstable: not part of the public API,
// may change in any release.

// which layer kinds are convolutions, which have parameters; the transformer layers' class names
export { CONV_KINDS, PARAMETRIC_KINDS } from './graph/types.js';
export { TRANSFORMER_CLASSES } from './graph/transformer-layers.js';

// one node's forward pass, as the engine runs it
export { forwardNode } from './forward.js';

// PyTorch's adaptive average pool and its transpose; the padding of a pooling/conv window
export {
  adaptiveAvgPool2d,
  adaptiveAvgPool2dTranspose,
  adaptivePoolWindows,
} from './ops/adaptive-avg-pool.js';
export { windowPadding } from './ops/strided.js';

// a linear layer's map and its transpose
export { linearMapOf } from './ops/linear.js';

// the products of attention per head (XNNPACK on wasm), for the bench's comparison with tf.matMul
export { matMulShared, type SharedFactor, sharedFactor } from './ops/head-matmul.js';

// float32 tensors read and written in the wasm heap without a copy (LAMB's steps, MPRT's new weights, the max-pool
// gradient's masks)
export { exclusiveFloat32, readFloat32, wasmHeapBytes, writeFloat32 } from './ops/backend-memory.js';
