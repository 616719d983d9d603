/**
 * What TF.js's WebGL backend cannot do, and the engine therefore avoids. Its cumsum supports ranks up to 4:
 * the max-pool rule's first-maximum count runs on rank 3. A one-row dense product with more than 1000 inputs goes through TF.js's packed matMul with a zero
 * second row (ops/linear.ts), not its multiply+sum path whose [1, K, N] temporary exceeds the texture size of
 * many GPUs for VGG16's fc1. The path only runs on a backend named 'webgl': here a backend of that name that
 * runs the cpu kernels, so the test sees the extra row (in the kernel profile) and the same numbers as on cpu.
 */
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Attributor, disposeResult } from '../src/index.js';
import { mulberry32 } from './helpers.js';

const ALIAS = 'webgl';

beforeAll(async () => {
  tf.registerBackend(ALIAS, () => new MathBackendCPU());
  for (const kernel of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...kernel, backendName: ALIAS });
  await tf.setBackend('cpu');
});

afterAll(async () => {
  await tf.setBackend('cpu');
  tf.removeBackend(ALIAS);
});

function model(): tfl.Sequential {
  const rand = mulberry32(5);
  const m = tfl.sequential();
  m.add(tfl.layers.dense({ inputShape: [1200], units: 1100, activation: 'relu', name: 'fc1' }));
  m.add(tfl.layers.dense({ units: 3, name: 'out' }));
  m.setWeights(
    m.getWeights().map((w) =>
      tf.tensor(
        Array.from({ length: w.size }, () => rand() - 0.5),
        w.shape,
      ),
    ),
  );
  return m;
}

async function explain(backend: string): Promise<{ relevance: number[]; rows: number[] }> {
  await tf.setBackend(backend);
  const m = model();
  const x = tf.tensor2d([Array.from({ length: 1200 }, (_, i) => Math.sin(i))]);
  const lrp = new Attributor(m, { composite: 'epsilon_plus' });
  let relevance: number[] = [];
  const profile = await tf.profile(() => {
    const r = lrp.attribute(x, { target: 1 });
    relevance = Array.from(r.relevance.dataSync());
    disposeResult(r);
  });
  lrp.dispose();
  m.dispose();
  x.dispose();
  const rows = profile.kernels.filter((k) => k.name === 'BatchMatMul').map((k) => k.inputShapes[0]![0]!);
  return { relevance, rows };
}

describe('one-row dense products on WebGL', () => {
  it('run with a second row and give the same relevance as without', async () => {
    const cpu = await explain('cpu');
    const webgl = await explain(ALIAS);
    expect(tf.getBackend()).toBe(ALIAS);
    // products: forward fc1 (1200 shared), forward out (1100), backward out (3), backward fc1 (1100); on cpu
    // a backward product of few rows is (W g^T)^T, its first factor W ([1100, 3], [1200, 1100])
    expect(cpu.rows).toEqual([1, 1, 1100, 1200]);
    expect(webgl.rows).toEqual([2, 2, 1, 2]);
    expect(webgl.relevance).toEqual(cpu.relevance);
    expect(cpu.relevance.some((v) => v !== 0)).toBe(true);
  });
});

describe("the max-pool rule's first-maximum count", () => {
  it('runs cumsum on rank 4 at most (WebGL supports no more)', async () => {
    // the host backends find the first maxima by a loop; a GPU backend counts them with cumsum
    await tf.setBackend(ALIAS);
    const m = tfl.sequential();
    m.add(
      tfl.layers.conv2d({ inputShape: [8, 8, 2], filters: 3, kernelSize: 3, padding: 'same', name: 'conv' }),
    );
    m.add(tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }));
    m.add(tfl.layers.flatten({ name: 'flatten' }));
    m.add(tfl.layers.dense({ units: 2, name: 'out' }));
    const x = tf.randomUniform([1, 8, 8, 2], 0, 1, 'float32', 3);
    const lrp = new Attributor(m, { composite: 'epsilon_plus' });
    const profile = await tf.profile(() => disposeResult(lrp.attribute(x, { target: 0 })));
    const cumsums = profile.kernels.filter((k) => k.name === 'Cumsum');
    expect(cumsums.length).toBeGreaterThan(0);
    for (const k of cumsums) expect(k.inputShapes[0]!.length).toBeLessThanOrEqual(4);
    lrp.dispose();
    m.dispose();
    x.dispose();
    await tf.setBackend('cpu');
  });
});
