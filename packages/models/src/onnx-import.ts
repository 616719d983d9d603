import { CrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  type OnnxAttribute,
  type OnnxDim,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
  onnxTensorValues,
  parseOnnxModel,
} from './onnx-proto.js';
import { paddedMaxPooling2d } from './padded-max-pooling-2d.js';
import { preset } from './preset-initializer.js';

/** The ONNX operators {@link importOnnx} converts (default domain, opsets 11-18). Anything else is refused. */
export const ONNX_SUPPORTED_OPS = [
  'Conv',
  'Gemm',
  'MatMul',
  'BatchNormalization',
  'Relu',
  'LeakyRelu',
  'Clip',
  'Sigmoid',
  'Tanh',
  'Elu',
  'Softmax',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'GlobalMaxPool',
  'Add',
  'Concat',
  'Flatten',
  'Reshape',
  'Pad',
  'Mul',
  'Identity',
  'Dropout',
  'Constant',
] as const;

/** The ONNX opsets (default domain) {@link importOnnx} reads. */
export const ONNX_OPSETS = { min: 11, max: 18 } as const;

export interface OnnxImportOptions {
  /** [height, width] for an input whose spatial size is dynamic (`dim_param`), e.g. from `dynamic_axes`. A
   * dynamic batch size needs nothing. The CLI's `--input-size`. */
  inputSize?: number | readonly [number, number];
  /** The bytes of a file that holds tensors outside the model (ONNX external data, `location` relative to the
   * model file), or undefined when it is not available. `readOnnx` of `@crp/models/node` reads them from disk. */
  externalData?: (location: string) => Uint8Array | undefined;
  /** Name of the returned model (default: the ONNX graph's name). */
  name?: string;
}

type ConstValue = { kind: 'const'; dims: number[]; data: Float64Array };
/** A tensor of the model being built. 4-D ONNX values (NCHW) are NHWC Keras tensors; `squeezed` marks a Keras
 * [N, C] tensor that stands for ONNX's [N, C, 1, 1] (after a global pool); `flat` marks the output of a
 * flatten of a (c, h, w) map, whose Gemm rows need the (h, w, c) order. */
type TensorValue = {
  kind: 'tensor';
  sym: tfl.SymbolicTensor;
  squeezed?: boolean;
  flat?: [number, number, number];
};
type Value = ConstValue | TensorValue;

function unsupportedOp(node: OnnxNode, why?: string): never {
  const label = node.name === '' ? node.opType : `'${node.name}' (${node.opType})`;
  throw new CrpError(
    'unsupported-layer',
    why === undefined
      ? `ONNX node ${label}${node.domain === '' ? '' : ` of domain '${node.domain}'`}: operator ${node.opType} is not supported. Supported operators: ${ONNX_SUPPORTED_OPS.join(', ')}`
      : `ONNX node ${label}: ${why}`,
    { details: { opType: node.opType, node: node.name, supported: [...ONNX_SUPPORTED_OPS] } },
  );
}

function attrInt(node: OnnxNode, name: string, fallback: number): number {
  const a = node.attributes.get(name);
  return a?.i ?? fallback;
}
function attrFloat(node: OnnxNode, name: string, fallback: number): number {
  const a = node.attributes.get(name);
  return a?.f ?? fallback;
}
function attrInts(node: OnnxNode, name: string): number[] | undefined {
  const a: OnnxAttribute | undefined = node.attributes.get(name);
  return a === undefined ? undefined : a.ints;
}

/** PyTorch-style module name of a node: from the weight's initializer name (`features.0.weight` ->
 * `features.0`), else from the scope path that torch.onnx (>= 1.13) writes into node names
 * (`/layer1/layer1.0/conv1/Conv` -> `layer1.0.conv1`), else the node name itself. */
function moduleName(node: OnnxNode, weightName: string | undefined, functional: boolean): string {
  const w = weightName?.match(/^(.+)\.weight$/);
  if (w !== undefined && w !== null && !w[1]!.startsWith('onnx::')) return w[1]!;
  if (node.name.startsWith('/')) {
    const segments = node.name.split('/').filter((s) => s !== '');
    const op = segments.pop() ?? node.opType;
    // a scope segment is the module's name in its parent, or `<parent>.<index>` for a Sequential's child
    // (`/layer2/layer2.0/downsample/downsample.0/Conv` -> layer2.0.downsample.0)
    let path = '';
    let last = '';
    for (const s of segments) {
      path =
        last !== '' && s.startsWith(`${last}.`)
          ? `${path}${s.slice(last.length)}`
          : path === ''
            ? s
            : `${path}.${s}`;
      last = s;
    }
    if (functional || path === '') {
      const suffix = op.replace(/^[A-Za-z]+/, '').replace(/^_/, '_');
      const opName = `${node.opType.toLowerCase()}${suffix}`;
      return path === '' ? opName : `${path}.${opName}`;
    }
    return path;
  }
  return node.name !== '' ? node.name : node.opType.toLowerCase();
}

/** A legal, unique Keras layer name. */
class Names {
  private readonly used = new Set<string>();
  take(wanted: string): string {
    let base = wanted.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[^A-Za-z0-9]+/, '');
    if (base === '') base = 'layer';
    let name = base;
    for (let k = 1; this.used.has(name); k++) name = `${base}_${k}`;
    this.used.add(name);
    return name;
  }
}

/** TF's 'same' padding [before, after] of one spatial axis. */
function samePads(size: number, kernel: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

interface Window {
  kernel: [number, number];
  strides: [number, number];
  /** [top, left, bottom, right] as ONNX writes them */
  pads: [number, number, number, number];
}

function windowOf(node: OnnxNode, kernel: [number, number], size: [number, number]): Window {
  const strides = (attrInts(node, 'strides') ?? [1, 1]) as [number, number];
  const dilations = attrInts(node, 'dilations') ?? [1, 1];
  if (dilations.some((d) => d !== 1)) {
    unsupportedOp(
      node,
      `dilations [${dilations.join(', ')}] are not supported (the LRP engine has no dilated convolution or pooling); supported: [1, 1]`,
    );
  }
  const autoPad = node.attributes.get('auto_pad')?.s ?? 'NOTSET';
  let pads = (attrInts(node, 'pads') ?? [0, 0, 0, 0]) as [number, number, number, number];
  if (autoPad === 'VALID') pads = [0, 0, 0, 0];
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const [t, b] = samePads(size[0], kernel[0], strides[0]);
    const [l, r] = samePads(size[1], kernel[1], strides[1]);
    pads = autoPad === 'SAME_UPPER' ? [t, l, b, r] : [b, r, t, l];
  } else if (autoPad !== 'NOTSET') unsupportedOp(node, `auto_pad '${autoPad}' is unknown`);
  if (pads.length !== 4 || pads.some((p) => p < 0))
    unsupportedOp(node, `pads [${pads.join(', ')}] are not supported`);
  return { kernel, strides, pads };
}

/** 'valid', 'same' (where TF's same padding is exactly the ONNX pads) or explicit pads. */
function paddingOf(
  w: Window,
  size: [number, number],
): 'valid' | 'same' | [[number, number], [number, number]] {
  const [t, l, b, r] = w.pads;
  if (t === 0 && l === 0 && b === 0 && r === 0) return 'valid';
  const [st, sb] = samePads(size[0], w.kernel[0], w.strides[0]);
  const [sl, sr] = samePads(size[1], w.kernel[1], w.strides[1]);
  if (st === t && sb === b && sl === l && sr === r) return 'same';
  return [
    [t, b],
    [l, r],
  ];
}

/** NCHW shape of a tensor value ([N, C] for 2-D ones; squeezed ones as [N, C, 1, 1]). */
function onnxShape(v: TensorValue): number[] {
  const s = v.sym.shape.map((d) => (d === null ? -1 : d));
  if (s.length === 4) return [s[0]!, s[3]!, s[1]!, s[2]!];
  if (v.squeezed === true) return [s[0]!, s[1]!, 1, 1];
  return s;
}

/** Torch [out, in, kh, kw] -> TF [kh, kw, in, out]. */
function convKernel(w: Float64Array, out: number, inC: number, kh: number, kw: number): tf.Tensor4D {
  const k = new Float32Array(w.length);
  for (let o = 0; o < out; o++)
    for (let i = 0; i < inC; i++)
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++)
          k[((y * kw + x) * inC + i) * out + o] = w[((o * inC + i) * kh + y) * kw + x]!;
  return tf.tensor4d(k, [kh, kw, inC, out]);
}

/**
 * Imports an ONNX model of a CNN (from `torch.onnx.export`, `tf2onnx`, ...; opsets 11-18) as a functional
 * TF.js `LayersModel` of layers the LRP engine knows: NCHW becomes NHWC (conv kernels transposed, the rows of a
 * Gemm after a flatten permuted from (c, h, w) to (h, w, c)), asymmetric or non-'same' pads become
 * `ZeroPadding2D`, a product with a broadcast gate (squeeze-excitation) a `Multiply` whose first input is the
 * feature branch, `x * sigmoid(x)` the swish activation (SiLU). Layer names are PyTorch's module names where
 * the exporter kept them (initializer `features.0.weight` -> layer `features.0`, node
 * `/layer1/layer1.0/conv1/Conv` -> `layer1.0.conv1`), else the ONNX node names. Nothing is approximated: an
 * operator or attribute outside {@link ONNX_SUPPORTED_OPS} is refused by name.
 *
 * The model takes NHWC input [N, H, W, C] with the same preprocessing as the ONNX model (which takes NCHW) and
 * gives the same outputs.
 *
 * @returns a new model that the caller owns (`dispose()` it)
 * @throws CrpError `corrupt-file` for bytes that are not an ONNX model (truncated, damaged); `unsupported-format`
 *   for an opset outside 11-18; `unsupported-layer` for an unsupported operator or attribute (with the
 *   operator, the node and the supported list); `invalid-shape` for a dynamic spatial input size without
 *   `inputSize`; `not-found` for external data that `externalData` does not provide
 */
export function importOnnx(source: Uint8Array | OnnxModel, options: OnnxImportOptions = {}): tfl.LayersModel {
  const onnx = source instanceof Uint8Array ? parseOnnxModel(source) : source;
  const opset = onnx.opsets.get('') ?? 0;
  if (opset < ONNX_OPSETS.min || opset > ONNX_OPSETS.max) {
    throw new CrpError(
      'unsupported-format',
      `ONNX opset ${opset} is not supported; supported: ${ONNX_OPSETS.min} to ${ONNX_OPSETS.max} (re-export with torch.onnx.export(..., opset_version=17))`,
      { details: { opset } },
    );
  }
  const g = onnx.graph;
  const values = new Map<string, Value>();
  const initializerNames = new Set<string>();
  const constOf = (t: OnnxTensor): ConstValue => {
    let external: Uint8Array | undefined;
    if (t.external !== undefined) {
      const location = t.external.location ?? '';
      const file = options.externalData?.(location);
      if (file === undefined) {
        throw new CrpError(
          'not-found',
          `ONNX tensor '${t.name}' stores its data in the external file '${location}', which was not found; keep it beside the .onnx file (or pass options.externalData)`,
          { details: { tensor: t.name, location } },
        );
      }
      const offset = Number(t.external.offset ?? 0);
      const length = t.external.length === undefined ? file.length - offset : Number(t.external.length);
      if (offset + length > file.length) {
        throw new CrpError(
          'corrupt-file',
          `ONNX tensor '${t.name}': bytes ${offset} to ${offset + length} of '${location}' are needed, the file has ${file.length}`,
        );
      }
      external = file.subarray(offset, offset + length);
    }
    return { kind: 'const', dims: t.dims, data: onnxTensorValues(t, external) };
  };
  for (const t of g.initializers) {
    values.set(t.name, constOf(t));
    initializerNames.add(t.name);
  }

  // the one image input
  const realInputs = g.inputs.filter((i) => !initializerNames.has(i.name));
  if (realInputs.length !== 1 || g.outputs.length !== 1) {
    throw new CrpError(
      'unsupported-model',
      `the ONNX graph has ${realInputs.length} inputs and ${g.outputs.length} outputs; the toolkit explains models with one input and one output`,
    );
  }
  const input = realInputs[0]!;
  const dims: OnnxDim[] = input.shape ?? [];
  const size =
    options.inputSize === undefined
      ? undefined
      : typeof options.inputSize === 'number'
        ? [options.inputSize, options.inputSize]
        : options.inputSize;
  const fixed = (d: OnnxDim, i: number, what: string): number => {
    if (typeof d === 'number' && d > 0) {
      if (size !== undefined && i >= 2 && d !== size[i - 2]) {
        throw new CrpError(
          'invalid-argument',
          `inputSize ${size[0]}x${size[1]} does not fit the ONNX input '${input.name}', whose ${what} is fixed at ${d}`,
        );
      }
      return d;
    }
    if (size !== undefined && i >= 2) return size[i - 2]!;
    throw new CrpError(
      'invalid-shape',
      `the ONNX input '${input.name}' has a dynamic ${what} (${d === null ? 'unknown' : `'${d}'`}) in its shape [${dims.map(String).join(', ')}], which the engine cannot fix by itself; give the input size: inputSize: [height, width] (crp: --input-size HxW)`,
      { details: { input: input.name, shape: dims } },
    );
  };
  const names = new Names();
  let inputTensor: tfl.SymbolicTensor;
  if (dims.length === 4) {
    const c = fixed(dims[1]!, 1, 'channel count');
    const h = fixed(dims[2]!, 2, 'height');
    const w = fixed(dims[3]!, 3, 'width');
    inputTensor = tfl.input({ shape: [h, w, c], name: names.take('input') });
  } else if (dims.length === 2) {
    inputTensor = tfl.input({ shape: [fixed(dims[1]!, 1, 'feature count')], name: names.take('input') });
  } else {
    throw new CrpError(
      'unsupported-model',
      `the ONNX input '${input.name}' has shape [${dims.map(String).join(', ')}]; supported: images [N, C, H, W] or vectors [N, F]`,
    );
  }
  values.set(input.name, { kind: 'tensor', sym: inputTensor });

  const consumers = new Map<string, OnnxNode[]>();
  for (const n of g.nodes)
    for (const i of n.inputs) {
      const list = consumers.get(i) ?? [];
      list.push(n);
      consumers.set(i, list);
    }
  const onlyConsumer = (name: string): OnnxNode | undefined => {
    const list = consumers.get(name) ?? [];
    return list.length === 1 && !g.outputs.some((o) => o.name === name) ? list[0] : undefined;
  };

  const skipped = new Set<OnnxNode>();
  const get = (node: OnnxNode, name: string | undefined): Value => {
    const v = name === undefined || name === '' ? undefined : values.get(name);
    if (v === undefined) unsupportedOp(node, `input '${name ?? ''}' is not produced by any node before it`);
    return v;
  };
  const tensorIn = (node: OnnxNode, k = 0): TensorValue => {
    const v = get(node, node.inputs[k]);
    if (v.kind !== 'tensor')
      unsupportedOp(node, `input ${k} is a constant; supported: a tensor computed from the model input`);
    return v;
  };
  const constIn = (node: OnnxNode, k: number): ConstValue | undefined => {
    const name = node.inputs[k];
    if (name === undefined || name === '') return undefined;
    const v = get(node, name);
    if (v.kind !== 'const') unsupportedOp(node, `input ${k} ('${name}') must be a constant (an initializer)`);
    return v;
  };
  const as4d = (node: OnnxNode, v: TensorValue): tfl.SymbolicTensor => {
    if (v.sym.shape.length === 4) return v.sym;
    if (v.squeezed === true) {
      const c = v.sym.shape[1] as number;
      return tfl.layers
        .reshape({
          name: names.take(`${moduleName(node, undefined, false)}.unsqueeze`),
          targetShape: [1, 1, c],
        })
        .apply(v.sym) as tfl.SymbolicTensor;
    }
    return unsupportedOp(node, `needs an image tensor [N, C, H, W]; got shape [${onnxShape(v).join(', ')}]`);
  };
  const set = (node: OnnxNode, v: Value, k = 0) => values.set(node.outputs[k]!, v);
  const apply = (layer: tfl.layers.Layer, x: tfl.SymbolicTensor | tfl.SymbolicTensor[]) =>
    layer.apply(x) as tfl.SymbolicTensor;
  const pad = (node: OnnxNode, x: tfl.SymbolicTensor, pads: [[number, number], [number, number]]) =>
    apply(
      tfl.layers.zeroPadding2d({
        name: names.take(`${moduleName(node, undefined, false)}.pad`),
        padding: pads,
      }),
      x,
    );

  for (const node of g.nodes) {
    if (skipped.has(node)) continue;
    if (node.domain !== '' && node.domain !== 'ai.onnx') unsupportedOp(node);
    const op = node.opType;
    switch (op) {
      case 'Constant': {
        const t = node.attributes.get('value')?.t;
        if (t === undefined) unsupportedOp(node, 'a Constant without a tensor `value` is not supported');
        set(node, constOf(t));
        break;
      }
      case 'Identity':
      case 'Dropout':
        set(node, get(node, node.inputs[0]));
        break;
      case 'Conv': {
        const x = tensorIn(node);
        const w = constIn(node, 1)!;
        const b = constIn(node, 2);
        const [out, perGroup, kh, kw] = w.dims as [number, number, number, number];
        const sym = as4d(node, x);
        const [h, wd, cin] = sym.shape.slice(1) as [number, number, number];
        const group = attrInt(node, 'group', 1);
        const win = windowOf(node, [kh, kw], [h, wd]);
        const padding = paddingOf(win, [h, wd]);
        const input = Array.isArray(padding) ? pad(node, sym, padding) : sym;
        const name = names.take(moduleName(node, node.inputs[1], false));
        const bias = b === undefined ? null : Float32Array.from(b.data);
        const common = {
          name,
          kernelSize: [kh, kw] as [number, number],
          strides: win.strides,
          padding: Array.isArray(padding) ? ('valid' as const) : padding,
          useBias: bias !== null,
          ...(bias === null ? {} : { biasInitializer: preset(() => tf.tensor1d(bias), 'zeros') }),
        };
        let y: tfl.SymbolicTensor;
        if (group === 1) {
          if (perGroup !== cin)
            unsupportedOp(node, `weight [${w.dims.join(', ')}] does not fit an input of ${cin} channels`);
          y = apply(
            tfl.layers.conv2d({
              ...common,
              filters: out,
              kernelInitializer: preset(() => convKernel(w.data, out, cin, kh, kw), 'glorotUniform'),
            }),
            input,
          );
        } else if (group === cin && perGroup === 1 && out % cin === 0) {
          // depthwise: torch's output channel c * m + j is TF's (channel c, multiplier j), the same order
          const m = out / cin;
          y = apply(
            tfl.layers.depthwiseConv2d({
              ...common,
              depthMultiplier: m,
              depthwiseInitializer: preset(() => {
                const k = new Float32Array(w.data.length);
                for (let c = 0; c < cin; c++)
                  for (let j = 0; j < m; j++)
                    for (let p = 0; p < kh * kw; p++)
                      k[(p * cin + c) * m + j] = w.data[(c * m + j) * kh * kw + p]!;
                return tf.tensor4d(k, [kh, kw, cin, m]);
              }, 'glorotUniform'),
            }),
            input,
          );
        } else {
          unsupportedOp(
            node,
            `grouped convolution (group ${group} of ${cin} channels) is not supported yet; supported: group 1 and depthwise (group = channels)`,
          );
        }
        set(node, { kind: 'tensor', sym: y });
        break;
      }
      case 'Gemm':
      case 'MatMul': {
        const x = tensorIn(node);
        const w = constIn(node, 1);
        if (w === undefined || w.dims.length !== 2)
          unsupportedOp(node, 'the second input must be a constant matrix');
        if (x.sym.shape.length !== 2)
          unsupportedOp(node, `needs a 2-D input [N, features]; got [${onnxShape(x).join(', ')}]`);
        const isGemm = op === 'Gemm';
        if (isGemm && attrInt(node, 'transA', 0) !== 0) unsupportedOp(node, 'transA = 1 is not supported');
        const transB = isGemm && attrInt(node, 'transB', 0) !== 0;
        const alpha = isGemm ? attrFloat(node, 'alpha', 1) : 1;
        const beta = isGemm ? attrFloat(node, 'beta', 1) : 1;
        const [r0, r1] = w.dims as [number, number];
        const [inF, units] = transB ? [r1, r0] : [r0, r1];
        if (inF !== x.sym.shape[1])
          unsupportedOp(node, `weight [${w.dims.join(', ')}] does not fit ${x.sym.shape[1]} input features`);
        let biasData: Float64Array | undefined;
        let outNode = node;
        if (isGemm) biasData = constIn(node, 2)?.data;
        else {
          // MatMul + Add of a constant vector: one dense layer
          const add = onlyConsumer(node.outputs[0]!);
          if (add?.opType === 'Add') {
            const other = add.inputs.find((n) => n !== node.outputs[0]);
            const v = other === undefined ? undefined : values.get(other);
            if (v?.kind === 'const' && v.data.length === units) {
              biasData = v.data;
              skipped.add(add);
              outNode = add;
            }
          }
        }
        if (biasData !== undefined && biasData.length !== units) {
          if (biasData.length !== 1)
            unsupportedOp(node, `bias of ${biasData.length} values for ${units} units`);
          biasData = new Float64Array(units).fill(biasData[0]!);
        }
        // kernel [in, out] in the TF order of the input features
        const flat = x.flat;
        const rowOf = (i: number): number => {
          if (flat === undefined) return i;
          const [c, h, wd] = flat; // torch row i = (ch, y, x) -> TF row (y, x, ch)
          const ch = Math.floor(i / (h * wd));
          const rest = i % (h * wd);
          return rest * c + ch;
        };
        const kernel = new Float32Array(inF * units);
        for (let i = 0; i < inF; i++) {
          const row = rowOf(i);
          for (let u = 0; u < units; u++)
            kernel[row * units + u] = alpha * w.data[transB ? u * inF + i : i * units + u]!;
        }
        const bias = biasData === undefined ? null : Float32Array.from(biasData, (v) => beta * v);
        const y = apply(
          tfl.layers.dense({
            name: names.take(moduleName(node, node.inputs[1], false)),
            units,
            useBias: bias !== null,
            kernelInitializer: preset(() => tf.tensor2d(kernel, [inF, units]), 'glorotUniform'),
            ...(bias === null ? {} : { biasInitializer: preset(() => tf.tensor1d(bias), 'zeros') }),
          }),
          x.sym,
        );
        set(outNode, { kind: 'tensor', sym: y });
        break;
      }
      case 'BatchNormalization': {
        const x = tensorIn(node);
        const parts = [1, 2, 3, 4].map((k) => constIn(node, k)!);
        if (parts.some((p) => p === undefined))
          unsupportedOp(node, 'scale, bias, mean and variance must be constants');
        if (node.outputs.filter((o) => o !== '').length > 1)
          unsupportedOp(node, 'training mode (running statistics as outputs) is not supported');
        const [gamma, beta, mean, variance] = parts.map((p) => Float32Array.from(p.data)) as [
          Float32Array,
          Float32Array,
          Float32Array,
          Float32Array,
        ];
        const y = apply(
          tfl.layers.batchNormalization({
            name: names.take(moduleName(node, node.inputs[1], false)),
            axis: -1,
            epsilon: attrFloat(node, 'epsilon', 1e-5),
            gammaInitializer: preset(() => tf.tensor1d(gamma), 'ones'),
            betaInitializer: preset(() => tf.tensor1d(beta), 'zeros'),
            movingMeanInitializer: preset(() => tf.tensor1d(mean), 'zeros'),
            movingVarianceInitializer: preset(() => tf.tensor1d(variance), 'ones'),
          }),
          x.sym,
        );
        set(node, { ...x, sym: y });
        break;
      }
      case 'Relu':
      case 'LeakyRelu':
      case 'Elu':
      case 'Tanh':
      case 'Clip':
      case 'Sigmoid': {
        const x = tensorIn(node);
        const name = () => names.take(moduleName(node, undefined, false));
        let layer: tfl.layers.Layer;
        if (op === 'Sigmoid') {
          // x * sigmoid(x) is SiLU (torch.nn.SiLU exports so): one swish activation
          const mul = onlyConsumer(node.outputs[0]!);
          if (
            mul?.opType === 'Mul' &&
            mul.inputs.includes(node.inputs[0]!) &&
            mul.inputs.includes(node.outputs[0]!)
          ) {
            skipped.add(mul);
            set(mul, {
              ...x,
              sym: apply(tfl.layers.activation({ name: name(), activation: 'swish' }), x.sym),
            });
            break;
          }
          layer = tfl.layers.activation({ name: name(), activation: 'sigmoid' });
        } else if (op === 'Relu') {
          layer = tfl.layers.reLU({ name: name() });
        } else if (op === 'LeakyRelu')
          layer = tfl.layers.leakyReLU({ name: name(), alpha: attrFloat(node, 'alpha', 0.01) });
        else if (op === 'Elu') {
          if (attrFloat(node, 'alpha', 1) !== 1)
            unsupportedOp(node, 'Elu with alpha other than 1 is not supported');
          layer = tfl.layers.elu({ name: name() });
        } else if (op === 'Tanh') layer = tfl.layers.activation({ name: name(), activation: 'tanh' });
        else {
          const lo = constIn(node, 1)?.data[0] ?? node.attributes.get('min')?.f ?? -Infinity;
          const hi = constIn(node, 2)?.data[0] ?? node.attributes.get('max')?.f ?? Infinity;
          if (lo !== 0 || (hi !== 6 && hi !== Infinity)) {
            unsupportedOp(
              node,
              `Clip(${lo}, ${hi}) is not supported; supported: Clip(0, 6) (ReLU6) and Clip(0) (ReLU)`,
            );
          }
          layer = tfl.layers.reLU({ name: name(), ...(hi === 6 ? { maxValue: 6 } : {}) });
        }
        set(node, { ...x, sym: apply(layer, x.sym) });
        break;
      }
      case 'Softmax': {
        const x = tensorIn(node);
        const axis = attrInt(node, 'axis', -1);
        if (x.sym.shape.length !== 2 || (axis !== -1 && axis !== 1))
          unsupportedOp(node, 'softmax is supported over the classes of a [N, classes] output only');
        set(node, {
          kind: 'tensor',
          sym: apply(tfl.layers.softmax({ name: names.take(moduleName(node, undefined, false)) }), x.sym),
        });
        break;
      }
      case 'MaxPool':
      case 'AveragePool': {
        const x = tensorIn(node);
        const sym = as4d(node, x);
        const [h, wd] = sym.shape.slice(1, 3) as [number, number];
        const kernel = (attrInts(node, 'kernel_shape') ?? []) as [number, number];
        if (kernel.length !== 2) unsupportedOp(node, 'only 2-D pooling is supported');
        if (node.outputs.filter((o) => o !== '').length > 1)
          unsupportedOp(node, 'the indices output of MaxPool is not supported');
        const win = windowOf(node, kernel, [h, wd]);
        if (attrInt(node, 'ceil_mode', 0) !== 0) {
          const floorOut = (n: number, k: number, s: number, p: number) => Math.floor((n + p - k) / s) + 1;
          const ceilOut = (n: number, k: number, s: number, p: number) => Math.ceil((n + p - k) / s) + 1;
          const [t, l, b, r] = win.pads;
          if (
            floorOut(h, kernel[0], win.strides[0], t + b) !== ceilOut(h, kernel[0], win.strides[0], t + b) ||
            floorOut(wd, kernel[1], win.strides[1], l + r) !== ceilOut(wd, kernel[1], win.strides[1], l + r)
          ) {
            unsupportedOp(
              node,
              'ceil_mode = 1 changes the output size here; supported: ceil_mode = 0 (or sizes where it makes no difference)',
            );
          }
        }
        let padding = paddingOf(win, [h, wd]);
        const max = op === 'MaxPool';
        const includePad = !max && attrInt(node, 'count_include_pad', 0) !== 0;
        let input = sym;
        const name = names.take(moduleName(node, undefined, false));
        if (max && Array.isArray(padding)) {
          // pads that never win a window, as ONNX and PyTorch (-inf)
          const y = apply(paddedMaxPooling2d({ name, poolSize: kernel, strides: win.strides, padding }), sym);
          set(node, { kind: 'tensor', sym: y });
          break;
        }
        if (Array.isArray(padding)) {
          // zero padding is exact for an average that counts the pads
          if (!includePad)
            unsupportedOp(
              node,
              `average pooling with pads [${win.pads.join(', ')}] that are not counted (count_include_pad = 0) is not supported unless they are TF's 'same' pads`,
            );
          input = pad(node, sym, padding);
          padding = 'valid';
        } else if (padding === 'same' && includePad) {
          input = pad(node, sym, [
            [win.pads[0], win.pads[2]],
            [win.pads[1], win.pads[3]],
          ]);
          padding = 'valid';
        }
        const args = { name, poolSize: kernel, strides: win.strides, padding };
        const y = apply(max ? tfl.layers.maxPooling2d(args) : tfl.layers.averagePooling2d(args), input);
        set(node, { kind: 'tensor', sym: y });
        break;
      }
      case 'GlobalAveragePool':
      case 'GlobalMaxPool': {
        const x = tensorIn(node);
        const name = names.take(moduleName(node, undefined, false));
        if (x.squeezed === true) {
          set(node, x);
          break;
        }
        const sym = as4d(node, x);
        const layer =
          op === 'GlobalAveragePool'
            ? tfl.layers.globalAveragePooling2d({ name })
            : tfl.layers.globalMaxPooling2d({ name });
        set(node, { kind: 'tensor', sym: apply(layer, sym), squeezed: true });
        break;
      }
      case 'Flatten':
      case 'Reshape': {
        const x = tensorIn(node);
        const shape = onnxShape(x);
        let target: number[];
        if (op === 'Flatten') {
          const axis = attrInt(node, 'axis', 1);
          if (axis !== 1)
            unsupportedOp(node, `Flatten over axis ${axis} is not supported; supported: axis 1`);
          target = [shape[0]!, shape.slice(1).reduce((a, b) => a * b, 1)];
        } else {
          const t = constIn(node, 1);
          if (t === undefined) unsupportedOp(node, 'the target shape must be a constant');
          const raw = Array.from(t.data);
          const known = shape.slice(1).reduce((a, b) => a * b, 1);
          target = raw.map((d, i) => (d === 0 ? shape[i]! : d));
          const fixedPart = target
            .slice(1)
            .filter((d) => d !== -1)
            .reduce((a, b) => a * b, 1);
          target = target.map((d, i) => (i > 0 && d === -1 ? known / fixedPart : d));
          if (target[0] !== -1 && target[0] !== shape[0] && shape[0] !== -1 && target[0] !== 1) {
            unsupportedOp(
              node,
              `a reshape that changes the batch axis ([${shape.join(', ')}] -> [${raw.join(', ')}]) is not supported`,
            );
          }
          target[0] = shape[0]!;
        }
        const rest = target.slice(1);
        const same = rest.length === shape.length - 1 && rest.every((d, i) => d === shape[i + 1]);
        if (same) set(node, x);
        else if (rest.length === 1 && x.sym.shape.length === 4) {
          const [, h, wd, c] = x.sym.shape as [null, number, number, number];
          const y = apply(tfl.layers.flatten({ name: names.take(moduleName(node, undefined, true)) }), x.sym);
          set(node, {
            kind: 'tensor',
            sym: y,
            ...(h * wd > 1 ? { flat: [c, h, wd] as [number, number, number] } : {}),
          });
        } else if (rest.length === 1 && x.squeezed === true) set(node, { kind: 'tensor', sym: x.sym });
        else if (rest.length === 3 && rest[1] === 1 && rest[2] === 1 && x.sym.shape.length === 2) {
          set(node, { kind: 'tensor', sym: x.sym, squeezed: true });
        } else {
          unsupportedOp(
            node,
            `reshape of [${shape.join(', ')}] to [${target.join(', ')}] is not supported; supported: flattening [N, C, H, W] to [N, C*H*W] and [N, C] <-> [N, C, 1, 1]`,
          );
        }
        break;
      }
      case 'Pad': {
        const x = tensorIn(node);
        const mode = node.attributes.get('mode')?.s ?? 'constant';
        const pads = constIn(node, 1)?.data;
        const value = constIn(node, 2)?.data[0] ?? 0;
        if (node.inputs[3] !== undefined && node.inputs[3] !== '')
          unsupportedOp(node, 'Pad with axes is not supported');
        if (mode !== 'constant' || value !== 0)
          unsupportedOp(
            node,
            `Pad mode '${mode}' with value ${value} is not supported; supported: constant zero padding`,
          );
        if (pads === undefined || pads.length !== 8)
          unsupportedOp(node, 'the pads of a 4-D tensor must be a constant of 8 values');
        const [n0, c0, t, l, n1, c1, b, r] = Array.from(pads);
        if (n0 !== 0 || c0 !== 0 || n1 !== 0 || c1 !== 0 || [t, l, b, r].some((p) => p! < 0)) {
          unsupportedOp(
            node,
            `pads [${Array.from(pads).join(', ')}] are not supported; supported: non-negative pads of height and width`,
          );
        }
        if (t === 0 && l === 0 && b === 0 && r === 0) {
          set(node, x); // torch exports AvgPool2d at opset 11 with an all-zero Pad before it
          break;
        }
        const sym = as4d(node, x);
        const y = apply(
          tfl.layers.zeroPadding2d({
            name: names.take(moduleName(node, undefined, false)),
            padding: [
              [t!, b!],
              [l!, r!],
            ],
          }),
          sym,
        );
        set(node, { kind: 'tensor', sym: y });
        break;
      }
      case 'Add':
      case 'Mul':
      case 'Concat': {
        const ins = node.inputs.map((n) => get(node, n));
        if (ins.some((v) => v.kind !== 'tensor')) {
          unsupportedOp(
            node,
            `${op} with a constant operand is not supported (except the bias after a MatMul); supported: ${op} of tensors computed from the input`,
          );
        }
        const ts = ins as TensorValue[];
        const name = names.take(moduleName(node, undefined, true));
        if (op === 'Concat') {
          const axis = attrInt(node, 'axis', 1);
          const rank = onnxShape(ts[0]!).length;
          if (axis !== 1 && axis !== 1 - rank)
            unsupportedOp(node, `Concat over axis ${axis} is not supported; supported: the channel axis 1`);
          const syms = ts.every((t) => t.squeezed === true || t.sym.shape.length === 2)
            ? ts.map((t) => t.sym)
            : ts.map((t) => as4d(node, t));
          set(node, {
            kind: 'tensor',
            sym: apply(tfl.layers.concatenate({ name, axis: -1 }), syms),
            squeezed: ts.every((t) => t.squeezed === true),
          });
          break;
        }
        if (ts.length !== 2) unsupportedOp(node, `${op} of ${ts.length} inputs`);
        const [a, b] = ts as [TensorValue, TensorValue];
        const sa = onnxShape(a);
        const sb = onnxShape(b);
        const equal = sa.length === sb.length && sa.every((d, i) => d === sb[i]);
        if (op === 'Add') {
          if (!equal)
            unsupportedOp(
              node,
              `Add of shapes [${sa.join(', ')}] and [${sb.join(', ')}]; supported: equal shapes (residual additions)`,
            );
          const flat = a.flat ?? b.flat;
          const syms = a.squeezed === b.squeezed ? [a.sym, b.sym] : [as4d(node, a), as4d(node, b)];
          set(node, {
            kind: 'tensor',
            sym: apply(tfl.layers.add({ name }), syms),
            squeezed: a.squeezed === true && b.squeezed === true,
            ...(flat === undefined ? {} : { flat }),
          });
          break;
        }
        // Mul: a feature map times a gate broadcast over its height and width (squeeze-excitation)
        const isGate = (s: number[], full: number[]) =>
          s.length === 4 &&
          full.length === 4 &&
          s[1] === full[1] &&
          s[2] === 1 &&
          s[3] === 1 &&
          (full[2]! > 1 || full[3]! > 1);
        const [feature, gate] = isGate(sb, sa) ? [a, b] : isGate(sa, sb) ? [b, a] : [undefined, undefined];
        if (feature === undefined || gate === undefined) {
          unsupportedOp(
            node,
            `Mul of shapes [${sa.join(', ')}] and [${sb.join(', ')}] is not supported; supported: a feature map [N, C, H, W] times a gate [N, C, 1, 1] (squeeze-excitation) and x * sigmoid(x) (SiLU)`,
          );
        }
        set(node, {
          kind: 'tensor',
          sym: apply(tfl.layers.multiply({ name }), [as4d(node, feature), as4d(node, gate)]),
        });
        break;
      }
      default:
        unsupportedOp(node);
    }
  }

  const out = values.get(g.outputs[0]!.name);
  if (out === undefined || out.kind !== 'tensor') {
    throw new CrpError(
      'unsupported-model',
      `the ONNX output '${g.outputs[0]!.name}' is not computed from the input`,
    );
  }
  const name = (options.name ?? g.name).replace(/[^A-Za-z0-9_]/g, '_') || 'onnx_model';
  return tfl.model({ inputs: inputTensor, outputs: out.sym, name });
}
