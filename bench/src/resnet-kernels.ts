/**
 * Which TF.js wasm kernels a resnet50 LRP heatmap (EpsilonPlusFlat under the ResNet canonizer, one image, the
 * `resnet` suite's workload) spends its time in, wall and CPU (all threads) per kernel, convs split by kernel
 * size and stride. Manual (the profile of bench/README.md's `resnet` section):
 *
 *   pnpm --filter @crp/bench resnet-kernels [--threads N] [--size 224] [--runs 3] [--top K] [--shapes] [--classes]
 *
 * Every kernel registered for wasm is wrapped (kernels that a kernel calls directly count in the caller); the
 * time outside kernels (JavaScript: graph walk, rule bookkeeping) is the rest. Figures are means per heatmap.
 * `--shapes` splits every kernel by its input shapes (which conv, which product). `--classes` sums the kernels by
 * how TF.js's wasm backend runs them at 2 threads (src/elementwise-threads.ts measures it): convs and products
 * (XNNPACK, split over the pool), element-wise kernels XNNPACK splits over the pool (unary ones, binary ones with
 * a broadcast operand), and those that run as one task or as a generic loop on the calling thread (binary ones on
 * operands of one shape or with a scalar, Step, Select, ...). At 2 threads the last class costs wall time as its
 * 1-thread CPU time.
 */
import { parseArgs } from 'node:util';
import { selectBackend } from '@crp/backend';
import { disposeResult } from '@crp/lrp';
import * as tf from '@tensorflow/tfjs-core';
import { kernelTotals, printKernelTable, tallyWasmKernels } from './kernel-tally.js';
import { BENCH_RESNETS, benchResNetHeatmap } from './torch-fixtures.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: 'auto' },
    size: { type: 'string', default: '224' },
    runs: { type: 'string', default: '3' },
    top: { type: 'string', default: '20' },
    shapes: { type: 'boolean', default: false },
    classes: { type: 'boolean', default: false },
  },
});
const choice = await selectBackend({
  prefer: ['wasm'],
  threads: values.threads === 'auto' ? 'auto' : Number(values.threads),
});

/** Conv2D and FusedConv2D by kernel size and stride, so the 1x1 convs show apart from the 3x3 ones. */
function label(name: string, args: Parameters<tf.KernelFunc>[0]): string {
  const shapes = () =>
    values.shapes
      ? ` ${Object.values(args.inputs)
          .filter((t) => t !== undefined && t !== null)
          .map((t) => `[${(t as tf.TensorInfo).shape.join(',')}]`)
          .join(' ')}`
      : '';
  if (name !== 'Conv2D' && name !== 'FusedConv2D') return `${name}${shapes()}`;
  const filter = args.inputs.filter as tf.TensorInfo;
  const strides = (args.attrs as { strides: number | number[] }).strides;
  const s = Array.isArray(strides) ? strides[0] : strides;
  return `${name} ${filter.shape[0]}x${filter.shape[1]}/${s}${shapes()}`;
}
const GEMM = new Set([
  'Conv2D',
  'FusedConv2D',
  'DepthwiseConv2dNative',
  'FusedDepthwiseConv2D',
  'BatchMatMul',
  '_FusedMatMul',
]);
// the kernels measured in src/elementwise-threads.ts; others count as 'other kernels'
const BINARY = new Set(['Add', 'Sub', 'Multiply', 'RealDiv']);
const SPLIT_UNARY = new Set(['Relu', 'Neg', 'Abs', 'ClipByValue']);
const ONE_THREAD = new Set(['Step', 'Sign', 'GreaterEqual', 'Maximum']);

/** The kernel's class for `--classes` (see the header). */
function kernelClass(name: string, args: Parameters<tf.KernelFunc>[0]): string {
  if (GEMM.has(name)) return 'convs and products';
  if (SPLIT_UNARY.has(name)) return 'element-wise, split over the pool';
  if (ONE_THREAD.has(name)) return 'element-wise, one thread';
  if (BINARY.has(name)) {
    const [a, b] = [args.inputs.a, args.inputs.b] as tf.TensorInfo[];
    const size = (t: tf.TensorInfo) => t.shape.reduce((m, d) => m * d, 1);
    const broadcast = a !== undefined && b !== undefined && size(a) > 1 && size(b) > 1 && size(a) !== size(b);
    return broadcast ? 'element-wise, split over the pool' : 'element-wise, one thread';
  }
  if (name === 'Reshape' || name === 'Identity') return 'reshapes and identities (no data)';
  return 'other kernels';
}
const tallies = tallyWasmKernels(values.classes ? kernelClass : label);

const size = Number(values.size);
const workload = await benchResNetHeatmap(BENCH_RESNETS.resnet50, size);
const { image, lrp } = workload;
let sum = 0;
const heatmap = () => {
  const r = lrp.attribute(image, { target: 0 });
  sum = tf.tidy(() => tf.sum(r.relevance).dataSync()[0]!);
  disposeResult(r);
};
heatmap(); // untimed: the attributor's one-time derivations and XNNPACK's operator set-up
const before = tf.memory().numTensors;
tallies.clear();
const runs = Number(values.runs);
const c0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < runs; i++) heatmap();
const wall = (performance.now() - t0) / runs;
const c = process.cpuUsage(c0);
const cpu = (c.user + c.system) / 1000 / runs;
const inKernels = kernelTotals(tallies);
console.log(
  `backend ${tf.getBackend()} x${choice.threads}, resnet50 at ${size}, relevance sum ${sum}, tensors ${before} -> ${tf.memory().numTensors}`,
);
console.log(
  `per heatmap (mean of ${runs}): ${wall.toFixed(0)} ms wall, ${cpu.toFixed(0)} ms CPU; outside kernels ${(wall - inKernels.wall / runs).toFixed(0)} ms wall, ${(cpu - inKernels.cpu / runs).toFixed(0)} ms CPU`,
);
printKernelTable(tallies, { runs, top: Number(values.top), nameWidth: values.classes ? 40 : 20 });
workload.dispose();
