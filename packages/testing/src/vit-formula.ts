/**
 * The seeded formula of scripts/golden/lxt_vit.py (`formula`, `formula_weights`) for torchvision ViTs, so that the
 * vit_b_16 golden cases and the `vit` bench need no weight file (86M parameters): exact 32-bit integer hashing,
 * then one float64 multiply-add rounded to float32, identical in numpy. (A different formula from
 * `./torch-weights`, which the ResNet cases use.)
 */
import * as tf from '@tensorflow/tfjs-core';
import { fnv1a } from './torch-weights.js';

/** The ViT's shape, as @crp/models' `VitConfig` has it (structurally). */
export interface VitFormulaConfig {
  imageSize: number | readonly [number, number];
  patchSize: number;
  hiddenDim: number;
  mlpDim: number;
  numLayers: number;
  numClasses?: number;
}

/** Element i is offset + scale * (2 u - 1), u = lowbias32((fnv1a(name) + i * 0x9e3779b9) mod 2^32) / 2^32. */
export function vitFormulaValues(name: string, size: number, scale: number, offset: number): Float32Array {
  const seed = fnv1a(name);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    let x = (seed + Math.imul(i, 0x9e3779b9)) >>> 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d) >>> 0;
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b) >>> 0;
    x ^= x >>> 16;
    out[i] = offset + scale * (2 * ((x >>> 0) / 4294967296) - 1);
  }
  return out;
}

/** torchvision's state dict of a ViT whose every tensor comes from the formula (formula_weights in the script). */
export function vitFormulaStateDict(c: VitFormulaConfig): {
  names: readonly string[];
  has(name: string): boolean;
  entry(name: string): { dtype: string; shape: readonly number[] };
  float32(name: string): Float32Array;
} {
  const d = c.hiddenDim;
  const m = c.mlpDim;
  const p = c.patchSize;
  const side = (typeof c.imageSize === 'number' ? c.imageSize : c.imageSize[0]) / p;
  const shapes = new Map<string, number[]>([
    ['class_token', [1, 1, d]],
    ['conv_proj.weight', [d, 3, p, p]],
    ['conv_proj.bias', [d]],
    ['encoder.pos_embedding', [1, side * side + 1, d]],
  ]);
  for (let i = 0; i < c.numLayers; i++) {
    const b = `encoder.layers.encoder_layer_${i}.`;
    for (const [k, s] of [
      ['ln_1.weight', [d]],
      ['ln_1.bias', [d]],
      ['self_attention.in_proj_weight', [3 * d, d]],
      ['self_attention.in_proj_bias', [3 * d]],
      ['self_attention.out_proj.weight', [d, d]],
      ['self_attention.out_proj.bias', [d]],
      ['ln_2.weight', [d]],
      ['ln_2.bias', [d]],
      ['mlp.0.weight', [m, d]],
      ['mlp.0.bias', [m]],
      ['mlp.3.weight', [d, m]],
      ['mlp.3.bias', [d]],
    ] as const)
      shapes.set(b + k, [...s]);
  }
  const classes = c.numClasses ?? 1000;
  for (const [k, s] of [
    ['encoder.ln.weight', [d]],
    ['encoder.ln.bias', [d]],
    ['heads.head.weight', [classes, d]],
    ['heads.head.bias', [classes]],
  ] as const)
    shapes.set(k, [...s]);
  const values = (name: string): Float32Array => {
    const shape = shapes.get(name)!;
    const size = shape.reduce((a, b) => a * b, 1);
    if (/(ln_1|ln_2|encoder\.ln)\.weight$/.test(name)) return vitFormulaValues(name, size, 0.1, 1);
    if (name.endsWith('bias')) return vitFormulaValues(name, size, 0.05, 0);
    if (name === 'class_token' || name === 'encoder.pos_embedding')
      return vitFormulaValues(name, size, 0.5, 0);
    const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
    return vitFormulaValues(name, size, (name.includes('in_proj') ? 2 : 1) * Math.sqrt(3 / fanIn), 0);
  };
  const names = [...shapes.keys()];
  return {
    names,
    has: (n) => shapes.has(n),
    entry: (n) => ({ dtype: 'float32', shape: shapes.get(n)! }),
    float32: (n) => values(n),
  };
}

/** The image of the formula: `input` over NHWC [1, size, size, 3], row-major, values in [-1.5, 1.5). */
export function vitFormulaImage(c: VitFormulaConfig): tf.Tensor4D {
  const side = typeof c.imageSize === 'number' ? c.imageSize : c.imageSize[0];
  return tf.tensor4d(vitFormulaValues('input', side * side * 3, 1.5, 0), [1, side, side, 3]);
}
