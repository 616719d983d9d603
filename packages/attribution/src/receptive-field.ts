import { CrpError } from '@crp/common';
import { type ConvParams, type ModelGraph, windowPadding } from '@crp/lrp';

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

/** TF's padding before the first element of an axis (the engine's own window arithmetic), or a canonized
 * convolution's explicit padding of that axis. */
function padBefore(padding: ConvParams['padding'], size: number, k: number, s: number, axis: 0 | 1): number {
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

/** Geometry of one layer's output: per axis stride a, offset b and size r of a position's field. */
interface Field {
  a: [number, number];
  b: [number, number];
  r: [number, number];
  spatial: boolean;
}

/**
 * Receptive-field arithmetic over the layers from the input to `layer` (convolutions, pooling, zero padding;
 * activations, batch norm and other element-wise layers pass): per axis, a new layer with kernel k, stride s and
 * padding p before the first element maps (stride a, offset b, size r) to (a s, b - a p, r + a (k - 1)). Where
 * branches meet (Add, Concatenate: residual and dense blocks) a position sees the union of what its inputs see;
 * the branches must have the same stride (they do wherever their maps are added or concatenated).
 */
export function receptiveFieldGeometry(graph: ModelGraph, layer: string): ReceptiveFieldGeometry {
  const target = graph.node(layer);
  const input = spatialOf(graph, graph.inputId);
  const needed = graph.ancestorsOf(target.id);
  const fields = new Map<string, Field>();
  for (const node of graph.nodes) {
    if (!needed.has(node.id)) continue;
    const nid = node.id;
    if (nid === graph.inputId) {
      fields.set(nid, { a: [1, 1], b: [0, 0], r: [1, 1], spatial: true });
      continue;
    }
    const ins = node.inputs.map((i) => fields.get(i)!);
    if (ins.length > 1) {
      const spatial = ins.every((f) => f.spatial);
      const stride = ins[0]!.a;
      if (spatial && ins.some((f) => f.a[0] !== stride[0] || f.a[1] !== stride[1])) {
        throw new CrpError(
          'invalid-argument',
          `receptive-field arithmetic: the inputs of '${nid}' (${node.className}) have different strides`,
        );
      }
      const b: [number, number] = [0, 1].map((ax) => Math.min(...ins.map((f) => f.b[ax]!))) as [
        number,
        number,
      ];
      const r: [number, number] = [0, 1].map(
        (ax) => Math.max(...ins.map((f) => f.b[ax]! + f.r[ax]!)) - b[ax]!,
      ) as [number, number];
      fields.set(nid, { a: [...stride], b, r, spatial });
      continue;
    }
    const from = ins[0]!;
    const a: [number, number] = [...from.a];
    const b: [number, number] = [...from.b];
    const r: [number, number] = [...from.r];
    let spatial = from.spatial;
    const p = node.params;
    if (!spatial) {
      fields.set(nid, { a, b, r, spatial });
      continue;
    }
    const size = spatialOf(graph, node.inputs[0]!);
    let k: [number, number] | undefined;
    let s: [number, number] = [1, 1];
    let pad: [number, number] = [0, 0];
    switch (p.kind) {
      case 'conv2d':
      case 'depthwiseConv2d': {
        const ks = p.kernel.shape;
        k = [ks[0]!, ks[1]!];
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
        spatial = false;
        break;
      case 'custom':
        throw new CrpError(
          'invalid-argument',
          `receptive-field arithmetic does not know the geometry of the custom layer '${nid}'`,
        );
      default:
        break; // element-wise: activation, batch norm, identity (dropout)
    }
    if (k !== undefined) {
      for (const ax of [0, 1] as const) {
        b[ax] = b[ax] - a[ax] * pad[ax];
        r[ax] = r[ax] + a[ax] * (k[ax] - 1);
        a[ax] = a[ax] * s[ax];
      }
    }
    fields.set(nid, { a, b, r, spatial });
  }
  const f = fields.get(target.id)!;
  if (!f.spatial) {
    return {
      layer: target.id,
      stride: [1, 1],
      offset: [0, 0],
      size: input,
      input,
      map: [1, 1],
      spatial: false,
    };
  }
  return {
    layer: target.id,
    stride: f.a,
    offset: f.b,
    size: f.r,
    input,
    map: spatialOf(graph, target.id),
    spatial: true,
  };
}

/**
 * The input pixels seen by one position of a layer (flat index h * W + w or [h, w]), clipped to the image.
 * For a layer without spatial axes, the whole input.
 */
export function receptiveFieldBox(
  geometry: ReceptiveFieldGeometry,
  position: number | readonly [number, number],
): PixelBox {
  const [mh, mw] = geometry.map;
  const [h, w] = typeof position === 'number' ? [Math.floor(position / mw), position % mw] : position;
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 0 || w < 0 || h >= mh || w >= mw) {
    throw new CrpError(
      'invalid-argument',
      `position ${JSON.stringify(position)} is outside the ${mh}x${mw} map of '${geometry.layer}'`,
    );
  }
  const [ih, iw] = geometry.input;
  const y0 = geometry.stride[0] * h + geometry.offset[0];
  const x0 = geometry.stride[1] * w + geometry.offset[1];
  const top = Math.max(0, y0);
  const left = Math.max(0, x0);
  const bottom = Math.min(ih, y0 + geometry.size[0]);
  const right = Math.min(iw, x0 + geometry.size[1]);
  return { x: left, y: top, width: right - left, height: bottom - top };
}
