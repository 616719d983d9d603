import * as tf from '@tensorflow/tfjs-core';

/** Biases a fused kernel refused (see {@link withFusedBias}); they get the separate Add. */
const unfusable = new WeakSet<tf.Tensor>();

/**
 * A conv or matrix product with its bias added in the same kernel (on wasm, XNNPACK adds it in the product's
 * kernel: no separate Add over the output, about 7% of a ResNet-50 heatmap). Undefined when the bias is not a
 * vector or the backend refuses it: wasm's kernel reads the shape the bias's data was made with, so the view of
 * a [1, 1, 1, C] tensor reshaped to [C] is refused; such a bias is remembered and gets the separate Add. Any
 * other error is the caller's and is thrown: caught, it would silently switch the path (a kernel wrapper's own
 * error once made a profiler measure the unfused path).
 */
export function withFusedBias<T extends tf.Tensor>(bias: tf.Tensor, run: () => T): T | undefined {
  if (bias.rank !== 1 || unfusable.has(bias)) return undefined;
  try {
    // in a tidy: what the op made before the kernel refused is freed
    return tf.tidy(run);
  } catch (err) {
    if (!isBiasRefusal(err)) throw err;
    unfusable.add(bias);
    return undefined;
  }
}

/**
 * The backend's refusal of a bias: wasm's FusedConv2D and _FusedMatMul throw a plain Error "... rank-1 bias ..." or
 * "... bias shape ...". A TypeError is a bug of the code inside, even when its message names a variable `bias`
 * (Firefox: "bias is undefined", Safari: "evaluating 'bias.shape'").
 */
function isBiasRefusal(err: unknown): boolean {
  return err instanceof Error && err.name === 'Error' && /\bbias\b/.test(err.message);
}
