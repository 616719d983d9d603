/**
 * Weights from a seeded formula that the golden generator (scripts/golden/make_resnet_golden.py) computes
 * identically in numpy, so large models (resnet50: 25M parameters) need no committed weight file. Every step is
 * exact in both languages: 32-bit integer hashing, then one float64 multiply-add rounded once to float32.
 *
 * u(name, i) = h32(((fnv1a(name) ^ seed) + h32(i)) mod 2^32) / 2^32, in [0, 1), where h32 is the
 * "lowbias32" integer hash and fnv1a the 32-bit FNV-1a hash of the name's UTF-8 bytes.
 */
import * as tf from '@tensorflow/tfjs-core';

/** lowbias32: x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16 (all mod 2^32). */
export function h32(value: number): number {
  let x = value >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

/** 32-bit FNV-1a of the UTF-8 bytes of `text`. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(text)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h >>> 0;
}

/** `count` values of `scale * u + offset` for the tensor `name`, rounded to float32. */
export function formulaValues(
  name: string,
  count: number,
  seed: number,
  scale: number,
  offset: number,
): Float32Array {
  const base = (fnv1a(name) ^ seed) >>> 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (h32((base + h32(i)) >>> 0) / 4294967296) * scale + offset;
  return out;
}

/** How the generator fills a state-dict tensor, by its name and shape: He-uniform convolutions, Linear weights of
 * variance 1/in, batch norms with gamma in [0.5, 1), beta and mean in [-0.2, 0.2), var in [0.5, 1.5). */
export function torchTensorFormula(
  name: string,
  shape: readonly number[],
): { scale: number; offset: number } {
  const last = name.slice(name.lastIndexOf('.') + 1);
  if (last === 'num_batches_tracked') return { scale: 0, offset: 0 };
  if (shape.length === 4) {
    const a = Math.sqrt(6 / (shape[1]! * shape[2]! * shape[3]!));
    return { scale: 2 * a, offset: -a };
  }
  if (shape.length === 2) {
    const a = Math.sqrt(3 / shape[1]!);
    return { scale: 2 * a, offset: -a };
  }
  switch (last) {
    case 'weight':
      return { scale: 0.5, offset: 0.5 };
    case 'running_var':
      return { scale: 1, offset: 0.5 };
    default: // bias, running_mean
      return { scale: 0.4, offset: -0.2 };
  }
}

/** The input image of the golden cases: NCHW values in [-2, 2) of the tensor named `input`. */
export function formulaInput(shape: readonly number[], seed: number): Float32Array {
  return formulaValues(
    'input',
    shape.reduce((a, b) => a * b, 1),
    seed,
    4,
    -2,
  );
}

/** {@link formulaInput} of NCHW shape [n, 3, size, size] as the NHWC tensor [n, size, size, 3] a TF.js model reads:
 * the same image PyTorch sees. The caller owns the tensor. */
export function formulaImage(n: number, size: number, seed: number): tf.Tensor4D {
  return tf.tidy(() =>
    tf.transpose(tf.tensor4d(formulaInput([n, 3, size, size], seed), [n, 3, size, size]), [0, 2, 3, 1]),
  );
}

/** A state dict (the `StateDict` of @crp/models, structurally) with the formula's values for the given names and
 * shapes (e.g. `torchResNetShapes(...)`). Tensors are computed when asked for. */
export function formulaStateDict(
  shapes: ReadonlyMap<string, readonly number[]>,
  seed: number,
): {
  names: readonly string[];
  has(name: string): boolean;
  entry(name: string): { dtype: string; shape: readonly number[] };
  float32(name: string): Float32Array;
} {
  const names = [...shapes.keys()];
  const shapeOf = (name: string) => {
    const s = shapes.get(name);
    if (s === undefined) throw new Error(`no tensor '${name}'`);
    return s;
  };
  return {
    names,
    has: (name) => shapes.has(name),
    entry: (name) => ({
      dtype: name.endsWith('num_batches_tracked') ? 'int64' : 'float32',
      shape: shapeOf(name),
    }),
    float32(name) {
      const shape = shapeOf(name);
      const { scale, offset } = torchTensorFormula(name, shape);
      return formulaValues(
        name,
        shape.reduce((a, b) => a * b, 1),
        seed,
        scale,
        offset,
      );
    },
  };
}
