import { type GraphNode, graphFromLayersModel } from '@crp/lrp';
import { forwardNode } from '@crp/lrp/internal';
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from './predict.js';

/** A rectangle of a feature map, rows [y0, y1) and columns [x0, x1). */
export interface Box {
  y0: number;
  y1: number;
  x0: number;
  x1: number;
}

/** How one axis of a window op maps its input to its output: output o reads inputs o * stride - before ...
 * o * stride - before + extent - 1 (zeros, or for max pooling nothing, outside the map). */
interface Axis {
  extent: number;
  stride: number;
  before: number;
}

/** A window op (conv, pool, zero padding; or nothing for the input) followed by the element-wise nodes after
 * it (activations, batch norm, dropout): they share one dirty box, and only the last output is kept. */
interface Stage {
  window: GraphNode | undefined;
  pointwise: GraphNode[];
  axes: [Axis, Axis];
  /** Input and output maps [H, W, C]. */
  inShape: [number, number, number];
  outShape: [number, number, number];
  /** Multiply-adds per output position (the cost estimate). */
  perPosition: number;
  /** Whether the window is a conv whose ReLU (its own or the first element-wise node's) runs inside the conv
   * op, as XNNPACK's output clamp: one kernel call less per window, the same values (max(x, 0) either way). */
  fusedRelu: boolean;
}

const POINTWISE = new Set(['activation', 'batchNorm', 'identity']);
const WINDOWED = new Set(['conv2d', 'depthwiseConv2d', 'maxPool2d', 'avgPool2d', 'zeroPadding2d']);

function mapShape(shape: readonly (number | null)[]): [number, number, number] | undefined {
  if (shape.length !== 3 || shape.some((d) => d === null)) return undefined;
  return shape as [number, number, number];
}

/** The axes of a window node, or undefined if the windowed recompute cannot reproduce it exactly. */
function axesOf(node: GraphNode, inShape: [number, number, number]): [Axis, Axis] | undefined {
  const p = node.params;
  if (p.kind === 'zeroPadding2d') {
    return [0, 1].map((a) => ({ extent: 1, stride: 1, before: p.padding[a]![0] })) as [Axis, Axis];
  }
  if (
    p.kind !== 'conv2d' &&
    p.kind !== 'depthwiseConv2d' &&
    p.kind !== 'maxPool2d' &&
    p.kind !== 'avgPool2d'
  ) {
    return undefined;
  }
  // a grouped conv (PyTorch's groups) runs through the same engine op, but is not covered by the tests: refused
  if (p.kind === 'conv2d' && (p.groups ?? 1) !== 1) return undefined;
  let size: readonly number[];
  let dil: readonly number[] = [1, 1];
  if ('poolSize' in p) size = p.poolSize;
  else {
    size = p.kernel.shape.slice(0, 2);
    dil = p.dilations ?? dil;
  }
  const axes: Axis[] = [];
  for (const a of [0, 1] as const) {
    const extent = (size[a]! - 1) * dil[a]! + 1;
    const stride = p.strides[a]!;
    const pad = p.padding;
    let before: number;
    if (typeof pad !== 'string') before = pad[a][0];
    else if (pad === 'valid') before = 0;
    else {
      const out = Math.ceil(inShape[a]! / stride);
      const total = Math.max((out - 1) * stride + extent - inShape[a]!, 0);
      // TF's 'same' average pool divides by the count of real inputs, which explicit padding does not
      if (p.kind === 'avgPool2d' && total > 0) return undefined;
      before = Math.floor(total / 2);
    }
    axes.push({ extent, stride, before });
  }
  return axes as [Axis, Axis];
}

function costOf(node: GraphNode, outChannels: number): number {
  const p = node.params;
  if (p.kind === 'conv2d') {
    const [kh, kw, cin] = p.kernel.shape as number[];
    return kh! * kw! * cin! * outChannels;
  }
  if (p.kind === 'depthwiseConv2d') {
    const [kh, kw] = p.kernel.shape as number[];
    return kh! * kw! * outChannels;
  }
  return outChannels;
}

/** The output range that a change of inputs [a, b) reaches along one axis, clipped to the output. */
function reach(a: number, b: number, axis: Axis, out: number): [number, number] {
  const lo = Math.max(0, Math.ceil((a + axis.before - axis.extent + 1) / axis.stride));
  const hi = Math.min(out, Math.floor((b - 1 + axis.before) / axis.stride) + 1);
  return [lo, Math.max(lo, hi)];
}

const area = (b: Box): number => (b.y1 - b.y0) * (b.x1 - b.x0);

/**
 * The perturbation metrics' forward pass made incremental (dirty-window inference), exact: for a sequential
 * CNN (convolutions, pooling, zero padding, element-wise activations and batch norm, then any head such as
 * flatten and dense layers) it keeps every stage's output for the last input of one image and, when the next
 * input differs only inside a box, recomputes layer by layer only the output window that box reaches (a
 * convolution's window grown by the kernel's reach, a pool's aligned to its stride grid, zero padding applied
 * only where the window meets the border, as the full pass does), writes it back, and runs the head in full.
 * The outputs equal a full forward pass of the same input to float32 rounding. Memory: the stage outputs of
 * one image (VGG16 at 224 x 224: about 60 MB). Call {@link IncrementalForward.dispose} when done.
 */
export class IncrementalForward {
  private readonly stages: Stage[];
  private readonly headNodes: GraphNode[];
  private readonly headCost: number;
  private readonly maps: Float32Array[];
  /** Whether maps[] hold an image's last input and its stage outputs. */
  private started = false;

  private constructor(stages: Stage[], head: GraphNode[], headCost: number) {
    this.stages = stages;
    this.headNodes = head;
    this.headCost = headCost;
    this.maps = stages.map((s) => new Float32Array(s.outShape[0] * s.outShape[1] * s.outShape[2]));
  }

  /**
   * The incremental forward of `model` for inputs of `shape` [H, W, C], or undefined when the model is not a
   * `LayersModel` whose layers form one chain of window and element-wise stages before its head (e.g. a
   * residual network, a function, a model with an open input size).
   */
  static of(model: Classifier, shape: readonly [number, number, number]): IncrementalForward | undefined {
    if (typeof model === 'function') return undefined;
    let graph: ReturnType<typeof graphFromLayersModel>;
    try {
      graph = graphFromLayersModel(model, { keepSoftmax: true });
    } catch {
      return undefined;
    }
    const nodes = graph.nodes;
    const input = nodes[0];
    if (input === undefined || input.kind !== 'input' || graph.outputId !== nodes[nodes.length - 1]!.id) {
      return undefined;
    }
    for (let j = 1; j < nodes.length; j++) {
      if (nodes[j]!.inputs.length !== 1 || nodes[j]!.inputs[0] !== nodes[j - 1]!.id) return undefined;
    }
    const inputShape = mapShape(graph.inputShape);
    if (inputShape === undefined || inputShape.some((d, a) => d !== shape[a])) return undefined;
    const identity: Axis = { extent: 1, stride: 1, before: 0 };
    const stages: Stage[] = [
      {
        window: undefined,
        pointwise: [],
        axes: [identity, identity],
        inShape: inputShape,
        outShape: inputShape,
        perPosition: 0,
        fusedRelu: false,
      },
    ];
    let j = 1;
    for (; j < nodes.length; j++) {
      const node = nodes[j]!;
      const prev = stages[stages.length - 1]!;
      const out = mapShape(node.outputShape);
      if (out === undefined) break;
      if (POINTWISE.has(node.kind) && node.activation !== 'softmax') {
        // an element-wise layer on the input itself has no window op to follow: not handled
        if (prev.window === undefined || out.some((d, a) => d !== prev.outShape[a])) return undefined;
        prev.pointwise.push(node);
        prev.perPosition += out[2];
        continue;
      }
      if (!WINDOWED.has(node.kind) || node.activation === 'softmax') break;
      const axes = axesOf(node, prev.outShape);
      if (axes === undefined) return undefined;
      stages.push({
        window: node,
        pointwise: [],
        axes,
        inShape: prev.outShape,
        outShape: out,
        perPosition: costOf(node, out[2]),
        fusedRelu: false,
      });
    }
    if (stages.length < 2) return undefined;
    for (const st of stages) st.fusedRelu = reluFusable(st);
    const head = nodes.slice(j);
    let headCost = 0;
    for (const node of head) {
      if (node.params.kind === 'dense') headCost += node.params.kernel.size;
    }
    return new IncrementalForward(stages, head, headCost);
  }

  /** Multiply-adds of a full forward pass (the estimate {@link IncrementalForward.cost} compares with). */
  get fullCost(): number {
    return (
      this.stages.reduce((s, st) => s + st.outShape[0] * st.outShape[1] * st.perPosition, 0) + this.headCost
    );
  }

  /** The dirty box of each stage's output when `box` of the input changed (undefined once nothing changes). */
  boxes(box: Box | undefined): (Box | undefined)[] {
    const out: (Box | undefined)[] = [];
    let cur = box;
    for (const st of this.stages) {
      if (cur !== undefined && st.window !== undefined) {
        const [y0, y1] = reach(cur.y0, cur.y1, st.axes[0], st.outShape[0]);
        const [x0, x1] = reach(cur.x0, cur.x1, st.axes[1], st.outShape[1]);
        cur = y1 > y0 && x1 > x0 ? { y0, y1, x0, x1 } : undefined;
      }
      out.push(cur);
    }
    return out;
  }

  /** Estimated multiply-adds of the step after which `box` of the input changed (the full cost for the first
   * input of an image). */
  cost(box: Box | undefined): number {
    const boxes = this.boxes(box);
    return (
      this.stages.reduce((s, st, k) => s + (boxes[k] ? area(boxes[k]) : 0) * st.perPosition, 0) +
      this.headCost
    );
  }

  /** Forgets the last image: the next input is computed in full. */
  reset(): void {
    this.started = false;
  }

  /**
   * The input of the model's head (the last stage's output, a copy) for `input` (one image, NHWC values),
   * recomputing only what changed since the previous input of the same image. Steps are sequential, the head
   * is not: {@link IncrementalForward.head} runs it on many steps at once (its weights, e.g. VGG16's 400 MB
   * first dense layer, read once per batch instead of once per step).
   */
  features(input: Float32Array): Float32Array {
    const [h, w] = this.stages[0]!.outShape;
    // the first input of an image is computed in full (a map's border may depend on no input: zero padding)
    const box = this.started ? changedBox(this.maps[0]!, input, h, w) : { y0: 0, y1: h, x0: 0, x1: w };
    if (box !== undefined) {
      this.maps[0]!.set(input);
      const boxes = this.started
        ? this.boxes(box)
        : this.stages.map((st) => ({ y0: 0, y1: st.outShape[0], x0: 0, x1: st.outShape[1] }));
      for (let k = 1; k < this.stages.length; k++) {
        const b = boxes[k];
        if (b !== undefined) this.recompute(k, b);
      }
      this.started = true;
    }
    return Float32Array.from(this.maps[this.maps.length - 1]!);
  }

  /** The model's output [batch, classes] for a batch of {@link IncrementalForward.features}. The caller owns
   * the tensor. */
  head(features: readonly Float32Array[]): tf.Tensor {
    const shape = this.stages[this.stages.length - 1]!.outShape;
    const size = shape[0] * shape[1] * shape[2];
    const batch = new Float32Array(features.length * size);
    features.forEach((f, i) => {
      batch.set(f, i * size);
    });
    return tf.tidy(() => {
      let y: tf.Tensor = tf.tensor4d(batch, [features.length, ...shape]);
      for (const node of this.headNodes) y = forwardNode(node, [y]).output;
      return y;
    });
  }

  /** The model's output [1, classes] for `input`: {@link IncrementalForward.features}, then the head. */
  run(input: Float32Array): tf.Tensor {
    return this.head([this.features(input)]);
  }

  /** Recomputes stage k's output inside `box` from the stored output of stage k - 1. */
  private recompute(k: number, box: Box): void {
    const st = this.stages[k]!;
    const [ay, ax] = st.axes;
    const [h, w, c] = st.inShape;
    // the input window that the output box reads, and the part of it outside the map (the layer's padding)
    const r0 = box.y0 * ay.stride - ay.before;
    const r1 = (box.y1 - 1) * ay.stride - ay.before + ay.extent;
    const c0 = box.x0 * ax.stride - ax.before;
    const c1 = (box.x1 - 1) * ax.stride - ax.before + ax.extent;
    const win = { y0: Math.max(r0, 0), y1: Math.min(r1, h), x0: Math.max(c0, 0), x1: Math.min(c1, w) };
    const padding: [[number, number], [number, number]] = [
      [win.y0 - r0, r1 - win.y1],
      [win.x0 - c0, c1 - win.x1],
    ];
    const inWindow = readBox(this.maps[k - 1]!, w, c, win);
    const y = tf.tidy(() => {
      const window = st.window!;
      let x: tf.Tensor = tf.tensor4d(inWindow, [1, win.y1 - win.y0, win.x1 - win.x0, c]);
      let pad: string | [[number, number], [number, number]] = padding;
      if (window.kind === 'conv2d' || window.kind === 'depthwiseConv2d') {
        // zeros padded here and a 'valid' conv: one conv op per layer whatever the window's border (the WASM
        // backend keeps a packed copy of the weights per padding it has seen); a window inside the map needs no
        // pad (a copy)
        if (padding.flat().some((q) => q > 0)) x = tf.pad(x, [[0, 0], padding[0], padding[1], [0, 0]]);
        pad = 'valid';
      }
      // average pooling takes no explicit padding, and is only accepted where it has none (axesOf)
      if (window.kind === 'avgPool2d') pad = 'valid';
      const node = { ...window, params: { ...window.params, padding: pad } } as GraphNode;
      let y: tf.Tensor;
      let pointwise = st.pointwise;
      if (st.fusedRelu) {
        y = reluConv(node, x);
        // the ReLU was the conv's own, or the first element-wise node
        if (window.activation !== 'relu') pointwise = pointwise.slice(1);
      } else y = forwardNode(node, [x]).output;
      for (const p of pointwise) y = forwardNode(p, [y]).output;
      const expected = [1, box.y1 - box.y0, box.x1 - box.x0, st.outShape[2]];
      if (y.shape.some((d, a) => d !== expected[a])) {
        throw new Error(
          `internal: window of '${window.id}' has shape [${y.shape.join(', ')}], expected [${expected.join(', ')}]`,
        );
      }
      return y;
    });
    writeBox(this.maps[k]!, st.outShape[1], st.outShape[2], box, y.dataSync() as Float32Array);
    y.dispose();
  }

  /** Releases the stored outputs. */
  dispose(): void {
    this.reset();
    this.maps.length = 0;
  }
}

/** Whether a stage's window is a plain conv (bias, no groups or dilations: the forward pass's fused conv) whose
 * output goes through a ReLU before anything else. */
function reluFusable(st: Stage): boolean {
  const node = st.window;
  if (node === undefined || node.params.kind !== 'conv2d') return false;
  const p = node.params;
  if (p.bias === null || p.bias.rank !== 1 || (p.groups ?? 1) !== 1) return false;
  if ((p.dilations ?? [1, 1]).some((d) => d !== 1)) return false;
  if (node.activation === 'relu') return true;
  const next = st.pointwise[0];
  return node.activation === 'linear' && next?.kind === 'activation' && next.activation === 'relu';
}

/** A {@link reluFusable} stage's conv and ReLU as one op ('valid' padding: the window is padded already). */
function reluConv(node: GraphNode, x: tf.Tensor): tf.Tensor {
  const p = node.params;
  if (p.kind !== 'conv2d') throw new Error(`internal: '${node.id}' is a ${p.kind}, not a conv2d`);
  return tf.fused.conv2d({
    x: x as tf.Tensor4D,
    filter: p.kernel as tf.Tensor4D,
    strides: p.strides as [number, number],
    pad: 'valid',
    bias: p.bias!,
    activation: 'relu',
  });
}

/** The bounding box of the pixels where `b` differs from `a` (both [H, W, C]), or undefined if they are equal. */
export function changedBox(a: Float32Array, b: Float32Array, h: number, w: number): Box | undefined {
  const c = a.length / (h * w);
  let y0 = h;
  let y1 = 0;
  let x0 = w;
  let x1 = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * c;
      for (let q = 0; q < c; q++) {
        // -0 and 0 count as equal: no layer here tells them apart
        if (a[o + q] !== b[o + q]) {
          if (y < y0) y0 = y;
          if (y >= y1) y1 = y + 1;
          if (x < x0) x0 = x;
          if (x >= x1) x1 = x + 1;
          break;
        }
      }
    }
  }
  return y1 > y0 ? { y0, y1, x0, x1 } : undefined;
}

function readBox(map: Float32Array, w: number, c: number, b: Box): Float32Array {
  const rowLen = (b.x1 - b.x0) * c;
  const out = new Float32Array((b.y1 - b.y0) * rowLen);
  for (let y = b.y0; y < b.y1; y++) {
    const from = (y * w + b.x0) * c;
    out.set(map.subarray(from, from + rowLen), (y - b.y0) * rowLen);
  }
  return out;
}

function writeBox(map: Float32Array, w: number, c: number, b: Box, values: Float32Array): void {
  const rowLen = (b.x1 - b.x0) * c;
  for (let y = b.y0; y < b.y1; y++) {
    map.set(values.subarray((y - b.y0) * rowLen, (y - b.y0 + 1) * rowLen), (y * w + b.x0) * c);
  }
}
