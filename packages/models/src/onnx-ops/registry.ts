import {
  convertClip,
  convertElu,
  convertHardSigmoid,
  convertHardSwish,
  convertLeakyRelu,
  convertRelu,
  convertSigmoid,
  convertSoftmax,
  convertTanh,
} from './activations.js';
import { convertBatchNormalization } from './batch-norm.js';
import type { OnnxConverter } from './context.js';
import { convertConv } from './conv.js';
import { convertGemm } from './dense.js';
import { convertAdd, convertConcat, convertMul, convertSubDiv } from './elementwise.js';
import { convertSqueeze, convertTranspose, convertUnsqueeze } from './layout.js';
import { convertGlobalPool, convertPool } from './pooling.js';
import { convertConstant, convertIdentity, convertPad, convertReshape } from './shape.js';

/**
 * The converter of each ONNX operator (default domain, opsets 11-20), in the order the error message lists
 * them. One entry per operator; a family shares a converter that reads `node.opType`. An operator that is not
 * a key here is refused by name.
 */
export const ONNX_CONVERTERS: Readonly<Record<string, OnnxConverter>> = {
  Conv: convertConv,
  Gemm: convertGemm,
  MatMul: convertGemm,
  BatchNormalization: convertBatchNormalization,
  Relu: convertRelu,
  LeakyRelu: convertLeakyRelu,
  Clip: convertClip,
  Sigmoid: convertSigmoid,
  Tanh: convertTanh,
  Elu: convertElu,
  Softmax: convertSoftmax,
  MaxPool: convertPool,
  AveragePool: convertPool,
  GlobalAveragePool: convertGlobalPool,
  GlobalMaxPool: convertGlobalPool,
  Add: convertAdd,
  Concat: convertConcat,
  Flatten: convertReshape,
  Reshape: convertReshape,
  Pad: convertPad,
  Mul: convertMul,
  Identity: convertIdentity,
  Dropout: convertIdentity,
  Constant: convertConstant,
  HardSigmoid: convertHardSigmoid,
  HardSwish: convertHardSwish,
  Sub: convertSubDiv,
  Div: convertSubDiv,
  Transpose: convertTranspose,
  Squeeze: convertSqueeze,
  Unsqueeze: convertUnsqueeze,
};
