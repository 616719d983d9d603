import * as tf from '@tensorflow/tfjs-core';

/** `tf.tidy` for results that are not plain tensor containers (objects with null fields): everything `fn`
 * allocates is freed except the tensors `keepOf` names. */
export function tidyKeep<T>(
  fn: () => T,
  keepOf: (result: T) => readonly (tf.Tensor | null | undefined)[],
): T {
  let result: T | undefined;
  tf.tidy(() => {
    result = fn();
    for (const t of keepOf(result)) if (t) tf.keep(t);
  });
  return result as T;
}
