import { CrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  type OnnxAttribute,
  type OnnxGraph,
  type OnnxNode,
  type OnnxTensor,
  onnxTensorValues,
} from '../onnx-proto.js';

/** A constant of the graph (initializer or `Constant` node), in ONNX's layout. */
export type ConstValue = { kind: 'const'; dims: number[]; data: Float64Array };
/** A tensor of the model being built. 4-D ONNX values (NCHW) are NHWC Keras tensors; `squeezed` marks a Keras
 * [N, C] tensor that stands for ONNX's [N, C, 1, 1] (after a global pool); `flat` marks the output of a
 * flatten of a (c, h, w) map, whose Gemm rows need the (h, w, c) order; `nhwc` marks a 4-D ONNX value that is
 * itself channels-last (a tf2onnx graph's input and what it computes before its Transpose to NCHW), so the
 * Keras tensor is the ONNX value as it is. */
export type TensorValue = {
  kind: 'tensor';
  sym: tfl.SymbolicTensor;
  squeezed?: boolean;
  flat?: [number, number, number];
  nhwc?: boolean;
};
export type Value = ConstValue | TensorValue;

/** Where a layer's weights came from: the ONNX node, the graph values (initializers) its weights were read from
 * and how they were laid out, so the ONNX writer can put a trained or pruned layer's weights back. */
export type OnnxWeightLink =
  | { kind: 'conv'; layer: string; node: string; weight: string; bias?: string }
  | { kind: 'depthwise'; layer: string; node: string; weight: string; bias?: string }
  | {
      kind: 'dense';
      layer: string;
      node: string;
      weight: string;
      bias?: string;
      transB: boolean;
      alpha: number;
      beta: number;
      /** the (c, h, w) of a flattened map before it: TF's rows are in (h, w, c) order */
      flat?: [number, number, number];
    }
  | {
      kind: 'batchNorm';
      layer: string;
      node: string;
      scale: string;
      bias: string;
      mean: string;
      variance: string;
    };

/** Converts one ONNX node: reads its inputs from the context, adds Keras layers, sets its outputs. */
export type OnnxConverter = (node: OnnxNode, cx: ConversionContext) => void;

/** How messages name a node: `'name' (OpType)`, or the operator alone for an unnamed node. */
export function nodeLabel(node: OnnxNode): string {
  return node.name === '' ? node.opType : `'${node.name}' (${node.opType})`;
}

/** Refuses a node for a stated reason (an attribute value, a shape, an operand the engine cannot represent). */
export function refuse(node: OnnxNode, why: string, details: Record<string, unknown> = {}): never {
  throw new CrpError('unsupported-layer', `ONNX node ${nodeLabel(node)}: ${why}`, {
    details: { opType: node.opType, node: node.name, ...details },
  });
}

export function attrInt(node: OnnxNode, name: string, fallback: number): number {
  const a = node.attributes.get(name);
  return a?.i ?? fallback;
}
export function attrFloat(node: OnnxNode, name: string, fallback: number): number {
  const a = node.attributes.get(name);
  return a?.f ?? fallback;
}
export function attrInts(node: OnnxNode, name: string): number[] | undefined {
  const a: OnnxAttribute | undefined = node.attributes.get(name);
  return a === undefined ? undefined : a.ints;
}

/** The module path of torch.onnx's (>= 1.13) scope in a node name: `/layer1/layer1.0/conv1/Conv` ->
 * `layer1.0.conv1`, `/layer2/layer2.0/downsample/downsample.0/Conv` -> `layer2.0.downsample.0` (a segment is
 * the module's name in its parent, or `<parent>.<index>` for a Sequential's child); the last segment, the
 * operator's own name, is returned apart. */
function scopePath(nodeName: string): { path: string; op: string | undefined } {
  const segments = nodeName.split('/').filter((s) => s !== '');
  const op = segments.pop();
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
  return { path, op };
}

/** PyTorch-style module name of a node: from the weight's initializer name (`features.0.weight` ->
 * `features.0`), else from the scope path that torch.onnx writes into node names, else the node name itself.
 * `functional` nodes (an addition, a flatten) get their operator appended to the scope (`layer1.0.add`). */
export function moduleName(node: OnnxNode, weightName: string | undefined, functional: boolean): string {
  const w = weightName?.match(/^(.+)\.weight$/);
  if (w !== undefined && w !== null && !w[1]!.startsWith('onnx::')) return w[1]!;
  if (node.name.startsWith('/')) {
    const { path, op = node.opType } = scopePath(node.name);
    if (functional || path === '') {
      const suffix = op.replace(/^[A-Za-z]+/, '').replace(/^_/, '_');
      const opName = `${node.opType.toLowerCase()}${suffix}`;
      return path === '' ? opName : `${path}.${opName}`;
    }
    return path;
  }
  // tf2onnx keeps TF's op names, `<model>/<keras layer>/<op>` (`model/conv2d/Conv2D`): the Keras layer name
  const tf = node.name.split('/');
  if (tf.length >= 3) return tf[tf.length - 2]!;
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

/** ONNX shape of a tensor value: NCHW for 4-D ones (NHWC for `nhwc` ones), [N, C] for 2-D ones, squeezed ones as
 * [N, C, 1, 1]. */
export function onnxShape(v: TensorValue): number[] {
  return onnxShapeOf(v.sym.shape, v);
}

/** {@link onnxShape} of a Keras shape (a layer's output shape in another model with the same layer names: the
 * ONNX writer's pruned model), a batch of null as -1. */
export function onnxShapeOf(
  shape: readonly (number | null)[],
  v: { squeezed?: boolean; nhwc?: boolean },
): number[] {
  const s = shape.map((d) => (d === null ? -1 : d));
  if (s.length === 4) return v.nhwc === true ? s : [s[0]!, s[3]!, s[1]!, s[2]!];
  if (v.squeezed === true) return [s[0]!, s[1]!, 1, 1];
  return s;
}

/** Where an ONNX value lives in the model: the layer whose output it is, and how its Keras shape maps to ONNX's
 * (see {@link TensorValue}). The ONNX writer reads the shapes of a pruned model's values from it. */
export interface OnnxValueLink {
  layer: string;
  squeezed?: boolean;
  nhwc?: boolean;
}

/** A Reshape whose target shape is a constant (an initializer or a `Constant` node): the values named by its
 * data input, shape input and output, and the target as the file has it (-1 and 0 included), so the ONNX writer
 * can rewrite the constant when pruning changes the counts it names. `constant`: the Reshape of a constant, which
 * the importer folded; its target must stay as it is (pruning changes no constant's shape). */
export interface OnnxShapeLink {
  node: string;
  input: string;
  shape: string;
  output: string;
  target: number[];
  constant?: true;
  /** the Reshape's `allowzero` is 1: a 0 in its target is a count of 0, not a copy */
  allowzero?: true;
}

/** The bytes of an ONNX tensor kept in an external data file (`location`, `offset`, `length`), read through
 * `externalData`. */
export function externalBytes(
  t: OnnxTensor,
  externalData: ((location: string) => Uint8Array | undefined) | undefined,
): Uint8Array {
  const location = t.external?.location ?? '';
  const file = externalData?.(location);
  if (file === undefined) {
    throw new CrpError(
      'not-found',
      `ONNX tensor '${t.name}' stores its data in the external file '${location}', which was not found; keep it beside the .onnx file (or pass options.externalData)`,
      { details: { tensor: t.name, location } },
    );
  }
  const offset = Number(t.external?.offset ?? 0);
  const length = t.external?.length === undefined ? file.length - offset : Number(t.external.length);
  if (offset + length > file.length) {
    throw new CrpError(
      'corrupt-file',
      `ONNX tensor '${t.name}': bytes ${offset} to ${offset + length} of '${location}' are needed, the file has ${file.length}`,
    );
  }
  return file.subarray(offset, offset + length);
}

/**
 * The state of one conversion: the values computed so far (by ONNX value name), the Keras layer names taken,
 * who consumes what (for converters that fuse a pattern of nodes, e.g. MatMul + Add), and the nodes already
 * converted by such a fusion. Converters use it through these methods only.
 */
export class ConversionContext {
  private readonly values = new Map<string, Value>();
  private readonly names = new Names();
  private readonly consumers = new Map<string, OnnxNode[]>();
  private readonly skipped = new Set<OnnxNode>();
  /** The weight layers built so far and where their weights came from (for the ONNX writer). */
  readonly links: OnnxWeightLink[] = [];
  /** The Reshapes to constant targets converted so far (for the ONNX writer). */
  readonly shapeLinks: OnnxShapeLink[] = [];
  /** The batch size the graph's input fixes, undefined when it is dynamic: a Reshape target may name it as its
   * first count and still keep the batch axis. */
  inputBatch: number | undefined = undefined;

  constructor(
    private readonly graph: OnnxGraph,
    private readonly externalData?: (location: string) => Uint8Array | undefined,
  ) {
    for (const n of graph.nodes)
      for (const i of n.inputs) {
        const list = this.consumers.get(i) ?? [];
        list.push(n);
        this.consumers.set(i, list);
      }
  }

  /** A constant from an ONNX tensor (an initializer or a `Constant`), its external data resolved. */
  constOf(t: OnnxTensor): ConstValue {
    const external = t.external === undefined ? undefined : externalBytes(t, this.externalData);
    return { kind: 'const', dims: t.dims, data: onnxTensorValues(t, external) };
  }

  /** Every ONNX value computed from the input, by name: the layer whose output it is (for the ONNX writer). */
  valueLinks(): Map<string, OnnxValueLink> {
    const out = new Map<string, OnnxValueLink>();
    for (const [name, v] of this.values) {
      if (v.kind !== 'tensor') continue;
      out.set(name, {
        layer: v.sym.sourceLayer.name,
        ...(v.squeezed === true ? { squeezed: true } : {}),
        ...(v.nhwc === true ? { nhwc: true } : {}),
      });
    }
    return out;
  }

  /** The value named `name`, or undefined when nothing produced it (yet). */
  lookup(name: string): Value | undefined {
    return this.values.get(name);
  }
  define(name: string, v: Value): void {
    this.values.set(name, v);
  }
  /** Sets output `k` of a node. */
  set(node: OnnxNode, v: Value, k = 0): void {
    this.values.set(node.outputs[k]!, v);
  }
  get(node: OnnxNode, name: string | undefined): Value {
    const v = name === undefined || name === '' ? undefined : this.values.get(name);
    if (v === undefined) refuse(node, `input '${name ?? ''}' is not produced by any node before it`);
    return v;
  }
  tensorIn(node: OnnxNode, k = 0): TensorValue {
    const v = this.get(node, node.inputs[k]);
    if (v.kind !== 'tensor')
      refuse(node, `input ${k} is a constant; supported: a tensor computed from the model input`);
    return v;
  }
  /** Input `k` as a constant, or undefined when the optional input is absent. */
  constIn(node: OnnxNode, k: number): ConstValue | undefined {
    const name = node.inputs[k];
    if (name === undefined || name === '') return undefined;
    const v = this.get(node, name);
    if (v.kind !== 'const') refuse(node, `input ${k} ('${name}') must be a constant (an initializer)`);
    return v;
  }

  /** The only node that reads `name` (undefined if several do or it is a graph output). */
  onlyConsumer(name: string): OnnxNode | undefined {
    const list = this.consumers.get(name) ?? [];
    return list.length === 1 && !this.graph.outputs.some((o) => o.name === name) ? list[0] : undefined;
  }
  /** Marks a node as converted by a converter of an earlier node (a fused pattern). */
  skip(node: OnnxNode): void {
    this.skipped.add(node);
  }
  isSkipped(node: OnnxNode): boolean {
    return this.skipped.has(node);
  }

  /** A unique layer name for a node (see {@link moduleName}); `suffix` names helper layers (`.pad`). */
  layerName(node: OnnxNode, weightName?: string, functional = false, suffix = ''): string {
    return this.names.take(`${moduleName(node, weightName, functional)}${suffix}`);
  }
  /** Reserves a name (the input layer's). */
  takeName(wanted: string): string {
    return this.names.take(wanted);
  }

  apply(layer: tfl.layers.Layer, x: tfl.SymbolicTensor | tfl.SymbolicTensor[]): tfl.SymbolicTensor {
    return layer.apply(x) as tfl.SymbolicTensor;
  }
  /** An NCHW image value as its 4-D NHWC Keras tensor (a squeezed [N, C] one gets a reshape to [N, 1, 1, C]). */
  as4d(node: OnnxNode, v: TensorValue): tfl.SymbolicTensor {
    if (v.nhwc === true) nchwOnly(node);
    if (v.sym.shape.length === 4) return v.sym;
    if (v.squeezed === true) {
      const c = v.sym.shape[1] as number;
      return this.apply(
        tfl.layers.reshape({
          name: this.layerName(node, undefined, false, '.unsqueeze'),
          targetShape: [1, 1, c],
        }),
        v.sym,
      );
    }
    return refuse(node, `needs an image tensor [N, C, H, W]; got shape [${onnxShape(v).join(', ')}]`);
  }
  /** Zero padding [[top, bottom], [left, right]] before a node's layer. */
  pad(node: OnnxNode, x: tfl.SymbolicTensor, pads: [[number, number], [number, number]]): tfl.SymbolicTensor {
    return this.apply(
      tfl.layers.zeroPadding2d({ name: this.layerName(node, undefined, false, '.pad'), padding: pads }),
      x,
    );
  }
}

/** Refuses an operator that ONNX defines on NCHW (conv, pooling, batch norm, ...) given a channels-last value. */
export function nchwOnly(node: OnnxNode): never {
  return refuse(
    node,
    `${node.opType} is applied to a channels-last [N, H, W, C] tensor, which ONNX's ${node.opType} reads as NCHW; supported: NCHW tensors (tf2onnx puts a Transpose with perm [0, 3, 1, 2] before it)`,
  );
}

/** TF's 'same' padding [before, after] of one spatial axis. */
export function samePads(size: number, kernel: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

export interface Window {
  /** the span of the window: (k - 1) d + 1 for a dilated conv's kernel k */
  kernel: [number, number];
  strides: [number, number];
  /** [top, left, bottom, right] as ONNX writes them */
  pads: [number, number, number, number];
}

/** The dilations of a conv node ([1, 1] when absent). With strides too, the conv is a `GroupedConv2D` (see
 * convertConv): TF.js's own conv takes dilations only with stride 1. */
export function dilationsOf(node: OnnxNode): [number, number] {
  const dilations = attrInts(node, 'dilations') ?? [1, 1];
  if (dilations.length !== 2 || dilations.some((d) => !Number.isInteger(d) || d < 1))
    refuse(node, `dilations [${dilations.join(', ')}] are not supported; supported: two positive integers`);
  return dilations as [number, number];
}

/** The window of a conv or pool node: strides, and pads from `pads` or `auto_pad`. `kernel` is the span of the
 * window (a dilated kernel's, see {@link dilationsOf}); pooling with dilations is refused. */
export function windowOf(node: OnnxNode, kernel: [number, number], size: [number, number]): Window {
  const strides = (attrInts(node, 'strides') ?? [1, 1]) as [number, number];
  const dilations = attrInts(node, 'dilations') ?? [1, 1];
  if (node.opType !== 'Conv' && dilations.some((d) => d !== 1)) {
    refuse(
      node,
      `dilations [${dilations.join(', ')}] of ${node.opType} are not supported (the LRP engine has no dilated pooling); supported: [1, 1]`,
    );
  }
  const autoPad = node.attributes.get('auto_pad')?.s ?? 'NOTSET';
  let pads = (attrInts(node, 'pads') ?? [0, 0, 0, 0]) as [number, number, number, number];
  if (autoPad === 'VALID') pads = [0, 0, 0, 0];
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const [t, b] = samePads(size[0], kernel[0], strides[0]);
    const [l, r] = samePads(size[1], kernel[1], strides[1]);
    pads = autoPad === 'SAME_UPPER' ? [t, l, b, r] : [b, r, t, l];
  } else if (autoPad !== 'NOTSET') refuse(node, `auto_pad '${autoPad}' is unknown`);
  if (pads.length !== 4 || pads.some((p) => p < 0))
    refuse(node, `pads [${pads.join(', ')}] are not supported`);
  return { kernel, strides, pads };
}

/** 'valid', 'same' (where TF's same padding is exactly the ONNX pads) or explicit pads. */
export function paddingOf(
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

/** Torch [out, in, kh, kw] -> TF [kh, kw, in, out]. */
export function convKernel(w: Float64Array, out: number, inC: number, kh: number, kw: number): tf.Tensor4D {
  const k = new Float32Array(w.length);
  for (let o = 0; o < out; o++)
    for (let i = 0; i < inC; i++)
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++)
          k[((y * kw + x) * inC + i) * out + o] = w[((o * inC + i) * kh + y) * kw + x]!;
  return tf.tensor4d(k, [kh, kw, inC, out]);
}
