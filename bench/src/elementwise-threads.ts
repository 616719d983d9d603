/**
 * Which TF.js wasm element-wise kernels use the second XNNPACK thread, on ResNet-50's big maps (56x56x256 and
 * 112x112x64, 802,816 values each): every kernel's wall time at 1 and at 2 threads, in separate processes run in
 * turn (`--rounds` of each). Manual (issue 21, item 7):
 *
 *   pnpm --filter @crp/bench exec tsx src/elementwise-threads.ts [--rounds 2] [--quick]
 *
 * A kernel is threaded when its 2-thread wall is well under its 1-thread wall (ratio about 0.5). The CPU/wall ratio
 * of one process does not tell it: after a threaded kernel the pool's worker spins for a while and its CPU counts for
 * the kernels that follow. Each figure is the fastest of 25 batches (of at least 2 ms each), so that a busy machine
 * (another process taking the worker's core) slows single batches, not the result. Only a free machine answers the
 * question, though: at load 10-12 on 2 cores the split kernels took 5-8 times their 1-thread time at 2 threads
 * (each waits for the worker to get a core), which the load average printed before and after shows.
 */
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { selectBackend } from '@crp/backend';
import * as tf from '@tensorflow/tfjs-core';

const { values } = parseArgs({
  options: {
    threads: { type: 'string' },
    rounds: { type: 'string', default: '2' },
    quick: { type: 'boolean', default: false },
  },
});
const SHAPES: [number, number, number, number][] = [
  [1, 56, 56, 256],
  [1, 112, 112, 64],
];
const BATCHES = values.quick ? 5 : 25;

/** One process: ms per call of every case at this thread count, as JSON lines `{ case, ms }`. */
async function measure(threads: number): Promise<void> {
  await selectBackend({ prefer: ['wasm'], threads });
  for (const shape of SHAPES) {
    const [a, b] = [tf.randomNormal(shape), tf.randomNormal(shape)];
    const perChannel = tf.randomNormal([1, 1, 1, shape[3]]);
    const perPixel = tf.randomNormal([1, shape[1], shape[2], 1]);
    const cases: [string, () => tf.Tensor][] = [
      ['Add a+b', () => tf.add(a, b)],
      ['Sub a-b', () => tf.sub(a, b)],
      ['Multiply a*b', () => tf.mul(a, b)],
      ['RealDiv a/b', () => tf.div(a, b)],
      ['Maximum a,b', () => tf.maximum(a, b)],
      ['Add a+scalar', () => tf.add(a, 1e-6)],
      ['Multiply a*scalar', () => tf.mul(a, -1)],
      ['Multiply a*[C]', () => tf.mul(a, perChannel)],
      ['Multiply a*[H,W,1]', () => tf.mul(a, perPixel)],
      ['RealDiv a/[H,W,1]', () => tf.div(a, perPixel)],
      ['AddN a,b,a', () => tf.addN([a, b, a])],
      ['Relu', () => tf.relu(a)],
      ['ClipByValue 0,inf', () => tf.clipByValue(a, 0, Number.POSITIVE_INFINITY)],
      ['Neg', () => tf.neg(a)],
      ['Abs', () => tf.abs(a)],
      ['Step', () => tf.step(a, -1)],
      ['Sign', () => tf.sign(a)],
      ['GreaterEqual', () => tf.greaterEqual(a, 0)],
      ['Select', () => tf.where(tf.greaterEqual(a, 0), a, b)],
      ['Cast int32', () => tf.cast(a, 'int32')],
    ];
    for (const [name, f] of cases) {
      // calls per batch: at least 2 ms of work, so that timer resolution does not count
      const t0 = performance.now();
      for (let i = 0; i < 3; i++) f().dispose();
      const reps = Math.max(1, Math.ceil(2 / ((performance.now() - t0) / 3)));
      let best = Number.POSITIVE_INFINITY;
      for (let batch = 0; batch < BATCHES; batch++) {
        const t = performance.now();
        for (let i = 0; i < reps; i++) f().dispose();
        best = Math.min(best, (performance.now() - t) / reps);
      }
      console.log(JSON.stringify({ case: `${shape.slice(1).join('x')} ${name}`, ms: best }));
    }
    tf.dispose([a, b, perChannel, perPixel]);
  }
}

if (values.threads !== undefined) {
  await measure(Number(values.threads));
} else {
  const self = fileURLToPath(import.meta.url);
  const load = () => loadavg()[0]!.toFixed(1);
  const loadBefore = load();
  const best = new Map<string, [number, number]>();
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const threads of [1, 2]) {
      const args = [
        '--import',
        'tsx',
        self,
        '--threads',
        String(threads),
        ...(values.quick ? ['--quick'] : []),
      ];
      const out = execFileSync(process.execPath, args, { encoding: 'utf8' });
      for (const line of out.split('\n').filter((l) => l.startsWith('{'))) {
        const { case: name, ms } = JSON.parse(line) as { case: string; ms: number };
        const row = best.get(name) ?? [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY];
        row[threads - 1] = Math.min(row[threads - 1]!, ms);
        best.set(name, row);
      }
    }
  }
  console.log(
    `load average ${loadBefore} -> ${load()}; ms per call, fastest of ${BATCHES} batches in each of ${values.rounds} processes per thread count`,
  );
  console.log(`  ${'kernel'.padEnd(34)} 1 thread  2 threads  ratio  threaded`);
  for (const [name, [one, two]] of best) {
    const ratio = two / one;
    console.log(
      `  ${name.padEnd(34)} ${one.toFixed(3).padStart(8)} ${two.toFixed(3).padStart(10)} ${ratio.toFixed(2).padStart(6)}  ${ratio < 0.75 ? 'yes' : 'no'}`,
    );
  }
}
