import { CrpError } from '@crp/common';
import type { ModelGraph, PoolParams } from '@crp/lrp';
import { windowPadding } from '@crp/lrp/internal';

/**
 * How positions of a layer map to input pixels, per axis (rows, columns): position `o` sees input indices
 * `[stride * o + offset, stride * o + offset + size - 1]` (before clipping to the image).
 */
export interface ReceptiveFieldGeometry {
  layer: string;
  stride: [number, number];
  offset: [number, number];
  size: [number, number];
  /** input [height, width] */
  input: [number, number];
  /** the layer's [height, width] ([1, 1] for a layer without spatial axes: it sees the whole input) */
  map: [number, number];
  /** false for layers after flatten/global pooling/dense: every position sees the whole input */
  spatial: boolean;
}

/** A pixel rectangle in the input (clipped to it): left column `x`, top row `y`, size. */
export interface PixelBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** TF's padding before the first element of an axis (the engine's own window arithmetic), or a layer's
 * explicit padding of that axis (PyTorch's padded max pooling). */
function padBefore(padding: PoolParams['padding'], size: number, k: number, s: number, axis: 0 | 1): number {
  return windowPadding(size, k, s, typeof padding === 'string' ? padding : padding[axis])[0];
}

function spatialOf(graph: ModelGraph, id: string): [number, number] {
  const shape = graph.node(id).outputShape;
  if (shape.length !== 3 || typeof shape[0] !== 'number' || typeof shape[1] !== 'number') {
    throw new CrpError(
      'invalid-argument',
      `receptive-field arithmetic needs fixed [H, W, C] outputs; '${id}' has [${shape.map((d) => d ?? 'any').join(', ')}]`,
    );
  }
  return [shape[0], shape[1]];
}

/** Per axis: position o of a layer sees input indices [a o + b, a o + b + r - 1]; `size` is its map. */
interface Geometry {
  a: [number, number];
  b: [number, number];
  r: [number, number];
  spatial: boolean;
  size: [number, number];
}

/**
 * Receptive-field arithmetic over the layers from the input to `layer` (convolutions, pooling, zero padding;
 * activations, batch norm and other element-wise layers pass): per axis, a new layer with kernel k, stride s and
 * padding p before the first element maps (stride a, offset b, size r) to (a s, b - a p, r + a (k - 1)). Where
 * branches meet (Add, Concatenate) a position sees the union of what its inputs see; a gated product (Multiply)
 * follows its feature branch, the one that carries relevance (PassToFeature: the gate, a global pool of the
 * whole input, gets none).
 */
export function receptiveFieldGeometry(graph: ModelGraph, layer: string): ReceptiveFieldGeometry {
  const target = graph.node(layer);
  const input = spatialOf(graph, graph.inputId);
  const memo = new Map<string, Geometry>();
  const geometryOf = (id: string): Geometry => {
    const known = memo.get(id);
    if (known !== undefined) return known;
    let g: Geometry;
    if (id === graph.inputId) g = { a: [1, 1], b: [0, 0], r: [1, 1], spatial: true, size: input };
    else {
      const node = graph.node(id);
      if (node.kind === 'add' || node.kind === 'concatenate') g = union(id, node.inputs.map(geometryOf));
      // a product of two activations (attention) mixes every token: each position sees the whole input
      else if (node.kind === 'matMul') g = { ...geometryOf(node.inputs[0]!), spatial: false };
      else if (node.kind === 'multiply' || node.inputs.length === 1)
        g = step(id, geometryOf(node.inputs[0]!));
      else {
        throw new CrpError(
          'invalid-argument',
          `receptive-field arithmetic does not know how '${id}' (${node.className}) combines its ${node.inputs.length} inputs`,
        );
      }
    }
    memo.set(id, g);
    return g;
  };
  const union = (id: string, gs: Geometry[]): Geometry => {
    if (gs.some((g) => !g.spatial)) return { ...gs[0]!, spatial: false };
    const first = gs[0]!;
    if (gs.some((g) => g.a[0] !== first.a[0] || g.a[1] !== first.a[1])) {
      throw new CrpError(
        'invalid-argument',
        `receptive-field arithmetic: the inputs of '${id}' have different strides (${gs.map((g) => g.a.join('x')).join(', ')})`,
      );
    }
    const b: [number, number] = [Math.min(...gs.map((g) => g.b[0])), Math.min(...gs.map((g) => g.b[1]))];
    const end = [0, 1].map((ax) => Math.max(...gs.map((g) => g.b[ax]! + g.r[ax]!)));
    return { a: first.a, b, r: [end[0]! - b[0], end[1]! - b[1]], spatial: true, size: spatialOf(graph, id) };
  };
  const step = (nid: string, from: Geometry): Geometry => {
    if (!from.spatial) return from;
    const node = graph.node(nid);
    const p = node.params;
    const size = from.size;
    let k: [number, number] | undefined;
    let s: [number, number] = [1, 1];
    let pad: [number, number] = [0, 0];
    switch (p.kind) {
      case 'conv2d':
      case 'depthwiseConv2d': {
        const ks = p.kernel.shape;
        const d = p.dilations ?? [1, 1];
        // a dilated kernel spans (k - 1) d + 1 pixels
        k = [(ks[0]! - 1) * d[0] + 1, (ks[1]! - 1) * d[1] + 1];
        s = p.strides;
        pad = [padBefore(p.padding, size[0], k[0], s[0], 0), padBefore(p.padding, size[1], k[1], s[1], 1)];
        break;
      }
      case 'maxPool2d':
      case 'avgPool2d':
        k = p.poolSize;
        s = p.strides;
        pad = [padBefore(p.padding, size[0], k[0], s[0], 0), padBefore(p.padding, size[1], k[1], s[1], 1)];
        break;
      case 'zeroPadding2d':
        k = [1, 1];
        pad = [p.padding[0][0], p.padding[1][0]];
        break;
      // PyTorch's adaptive pool has windows of varying size and start: its positions are taken to see the
      // whole input (an over-estimate; in a VGG only flatten and dense layers follow it)
      case 'adaptiveAvgPool2d':
      case 'flatten':
      case 'globalAvgPool2d':
      case 'globalMaxPool2d':
      case 'dense':
      case 'reshape':
        return { ...from, spatial: false };
      case 'custom':
        throw new CrpError(
          'invalid-argument',
          `receptive-field arithmetic does not know the geometry of the custom layer '${nid}'`,
        );
      default:
        return from; // element-wise: activation, batch norm, identity (dropout), a gated product
    }
    const a: [number, number] = [from.a[0] * s[0], from.a[1] * s[1]];
    const b: [number, number] = [from.b[0] - from.a[0] * pad[0], from.b[1] - from.a[1] * pad[1]];
    const r: [number, number] = [from.r[0] + from.a[0] * (k[0] - 1), from.r[1] + from.a[1] * (k[1] - 1)];
    return { a, b, r, spatial: true, size: spatialOf(graph, nid) };
  };
  const { a, b, r, spatial } = geometryOf(target.id);
  if (!spatial) {
    return { layer: target.id, stride: [1, 1], offset: [0, 0], size: input, input, map: [1, 1], spatial };
  }
  return {
    layer: target.id,
    stride: a,
    offset: b,
    size: r,
    input,
    map: spatialOf(graph, target.id),
    spatial,
  };
}

/**
 * The input pixels seen by one position of a layer (flat index h * W + w or [h, w]), clipped to the image.
 * For a layer without spatial axes, the whole input (whatever the position: the token of a ViT's token layer).
 */
export function receptiveFieldBox(
  geometry: ReceptiveFieldGeometry,
  position: number | readonly [number, number],
): PixelBox {
  const [ih, iw] = geometry.input;
  // a layer without spatial axes (dense, or the tokens of a ViT after attention) sees the whole input
  if (!geometry.spatial) return { x: 0, y: 0, width: iw, height: ih };
  const [mh, mw] = geometry.map;
  const [h, w] = typeof position === 'number' ? [Math.floor(position / mw), position % mw] : position;
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 0 || w < 0 || h >= mh || w >= mw) {
    throw new CrpError(
      'invalid-argument',
      `position ${JSON.stringify(position)} is outside the ${mh}x${mw} map of '${geometry.layer}'`,
    );
  }
  const y0 = geometry.stride[0] * h + geometry.offset[0];
  const x0 = geometry.stride[1] * w + geometry.offset[1];
  const top = Math.max(0, y0);
  const left = Math.max(0, x0);
  const bottom = Math.min(ih, y0 + geometry.size[0]);
  const right = Math.min(iw, x0 + geometry.size[1]);
  return { x: left, y: top, width: right - left, height: bottom - top };
}
