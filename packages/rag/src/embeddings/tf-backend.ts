import * as tf from '@tensorflow/tfjs-core';
import { RagError } from '../errors.js';

/** Backends the default embedding can run on. `auto`: tensorflow (tfjs-node) if registered, else wasm, else cpu. */
export type TfBackendChoice = 'auto' | 'wasm' | 'cpu' | 'tensorflow' | 'keep';

let registered: Promise<void> | undefined;

async function registerBackends(): Promise<void> {
  registered ??= (async () => {
    await import('@tensorflow/tfjs-backend-cpu');
    await import('@tensorflow/tfjs-backend-wasm');
  })();
  return registered;
}

/**
 * Makes sure a TF.js backend is active for the embedding model and returns its name. `keep` uses
 * whatever the application chose already. Setting a backend is global to the process.
 */
export async function ensureBackend(choice: TfBackendChoice = 'auto'): Promise<string> {
  await registerBackends();
  if (choice === 'keep') {
    await tf.ready();
    return tf.getBackend();
  }
  const order = choice === 'auto' ? ['tensorflow', 'wasm', 'cpu'] : [choice];
  const current = tf.engine().backendName as string | undefined;
  // An application that already picked a fast backend keeps it.
  if (current && (current === choice || (choice === 'auto' && current !== 'cpu'))) return current;
  for (const name of order) {
    if (!tf.findBackendFactory(name)) continue;
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return name;
      }
    } catch {
      // try the next one
    }
  }
  throw new RagError(
    'EMBEDDING_FAILED',
    `No TF.js backend among ${order.join(', ')} could be initialised; valid choices: auto, wasm, cpu, tensorflow, keep.`,
  );
}
