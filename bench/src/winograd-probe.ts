/**
 * Probe (issues 21 and 23): is a Winograd 3x3 stride-1 convolution built from TF.js ops faster on wasm than
 * `tf.conv2d` (XNNPACK's direct igemm)? Times both on VGG16's and ResNet-50's 3x3 stride-1 shapes, CPU (all
 * threads) and wall, interleaved (direct, each variant, direct, ...), medians, with the largest error against
 * `tf.conv2d` (relative to its largest output); then per net the CPU summed over its convs. `--stages` adds the
 * CPU of each stage (input transform, products, output transform), `--kernels` the wasm kernels of each plan.
 *
 *   pnpm --filter @crp/bench exec tsx src/winograd-probe.ts [--threads 2] [--runs 5] [--only vgg|resnet]
 *     [--batches 1,8] [--variants kernel,f2-dw,f4-sep,f4-dw] [--stages] [--kernels] [--products matmul|conv1x1]
 *
 * `kernel` is `@crp/backend`'s Winograd F(4x4, 3x3) Conv2D kernel (forced for every size); the others are built
 * here from TF.js ops (the probe that chose it). A variant is a tile and an input transform. f2: F(2x2, 3x3), 4x4 input tiles, 16 products [tiles, Cin] x
 * [Cin, Cout]; f4: F(4x4, 3x3) (points 0, +-1, +-2), 6x6 input tiles, 36 products. Input transform B^T d B:
 * `dw` one depthwise conv (alpha x alpha window, stride m, multiplier alpha^2, XNNPACK), `sep` two depthwise
 * convs (alpha x 1 then 1 x alpha, multiplier alpha each), `dw1` alpha^2 depthwise convs of multiplier 1 (no
 * transpose; slow: 16 calls of 1.75 ms at 56x56x64); `dw` and `sep` then need one 3-D Transpose to [alpha^2,
 * tiles, Cin] and one split. The products are 2-D matMuls (XNNPACK). The output transform A^T M A is by adds
 * (shared terms once), the m x m outputs interleaved by two stacks: a rank-6 Transpose (17 ms for 56x56x64)
 * and tf.unstack (138 ms: wasm's Unpack) were far slower, and so was the output transform as one matMul
 * [m^2, alpha^2] x [alpha^2, tiles * Cout] (XNNPACK packs its large right factor on every call).
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { installWasmWinograd, selectBackend, uninstallWasmWinograd } from '@crp/backend';
import { WINOGRAD_F4 } from '@crp/backend/internal';
import * as tf from '@tensorflow/tfjs-core';
import { printKernelTable, tallyWasmKernels } from './kernel-tally.js';
import { median } from './measure.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '5' },
    only: { type: 'string' },
    batches: { type: 'string', default: '1,8' },
    variants: { type: 'string', default: 'f2-dw,f4-dw,f4-sep' },
    stages: { type: 'boolean', default: false },
    kernels: { type: 'boolean', default: false },
    products: { type: 'string', default: 'matmul' },
  },
});
await selectBackend({ prefer: ['wasm'], threads: Number(values.threads), winograd: false });

// F(2x2, 3x3) (Lavin & Gray 2016): Y = A^T [(G g G^T) . (B^T d B)] A
const BT2 = [
  [1, 0, -1, 0],
  [0, 1, 1, 0],
  [0, -1, 1, 0],
  [0, 1, 0, -1],
];
const G2 = [
  [1, 0, 0],
  [0.5, 0.5, 0.5],
  [0.5, -0.5, 0.5],
  [0, 0, 1],
];
// F(4x4, 3x3) with the points 0, +-1, +-2: the backend's own matrices
const { BT: BT4, G: G4 } = WINOGRAD_F4;

/** Kronecker rows: coefficient (p, q) x (i, j) = M[p][i] * M[q][j], as [rows^2, cols^2]. */
function kron(m: readonly number[][]): number[][] {
  const out: number[][] = [];
  for (const rp of m) for (const rq of m) out.push(rp.flatMap((a) => rq.map((b) => a * b)));
  return out;
}

/** U = G g G^T for every (Cin, Cout): [alpha^2, Cin, Cout]. Once per weight; not timed. */
function transformWeights(w: tf.Tensor4D, g: readonly number[][]): tf.Tensor3D {
  const [, , cin, cout] = w.shape;
  const k = kron(g); // [alpha^2, 9]
  return tf.tidy(() =>
    tf.reshape(tf.matMul(tf.tensor2d(k), tf.reshape(w, [9, cin * cout])), [k.length, cin, cout]),
  ) as tf.Tensor3D;
}

/** Depthwise filter of one 1-D transform along rows or columns, multiplier m = transform rows. */
function sepFilter(bt: readonly number[][], cin: number, alongRows: boolean): tf.Tensor4D {
  const a = bt.length;
  const data = new Float32Array(a * cin * a);
  // filter [a, 1, cin, a] or [1, a, cin, a]; entry (tap i, c, out p) = bt[p][i]
  for (let i = 0; i < a; i++)
    for (let c = 0; c < cin; c++) for (let p = 0; p < a; p++) data[(i * cin + c) * a + p] = bt[p]![i]!;
  return tf.tensor4d(data, alongRows ? [a, 1, cin, a] : [1, a, cin, a]);
}

interface Plan {
  name: string;
  run: (x: tf.Tensor4D) => tf.Tensor4D;
  stages?: (x: tf.Tensor4D) => Record<string, number>;
  dispose: () => void;
}

const cpuMs = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000;

function padFor(h: number, w: number, m: number, r: number) {
  const th = Math.ceil(h / m);
  const tw = Math.ceil(w / m);
  // input rows needed: th * m + r - 1, one of them the top zero row
  return {
    th,
    tw,
    pad: [
      [0, 0],
      [1, th * m + r - 1 - h - 1],
      [1, tw * m + r - 1 - w - 1],
      [0, 0],
    ] as [[number, number], [number, number], [number, number], [number, number]],
  };
}

/** The m x m outputs y[a][b] ([tiles, Cout] each) into [n, m th, m tw, Cout] by two stacks, cropped to h x w. */
function interleave(
  y: tf.Tensor2D[][],
  n: number,
  th: number,
  tw: number,
  h: number,
  w: number,
): tf.Tensor4D {
  const m = y.length;
  const cout = y[0]![0]!.shape[1];
  const rows = y.map((ya) => tf.reshape(tf.stack(ya, 1), [n, th, m * tw, cout]));
  const full = tf.reshape(tf.stack(rows, 2), [n, m * th, m * tw, cout]) as tf.Tensor4D;
  return full.shape[1] === h && full.shape[2] === w ? full : tf.slice(full, [0, 0, 0, 0], [n, h, w, cout]);
}

const two = tf.scalar(2);
const four = tf.scalar(4);
const eight = tf.scalar(8);

/** One 1-D output transform A^T m (alpha inputs to m outputs) by adds, shared terms once. */
function outputRow(t: tf.Tensor2D[]): tf.Tensor2D[] {
  const [m0, m1, m2, m3, m4, m5] = t as [
    tf.Tensor2D,
    tf.Tensor2D,
    tf.Tensor2D,
    tf.Tensor2D,
    tf.Tensor2D,
    tf.Tensor2D,
  ];
  if (t.length === 4) return [tf.add(tf.add(m0, m1), m2), tf.sub(tf.sub(m1, m2), m3)];
  const s12 = tf.add(m1, m2);
  const d12 = tf.sub(m1, m2);
  const s34 = tf.add(m3, m4);
  const d34 = tf.sub(m3, m4);
  return [
    tf.add(tf.add(m0, s12), s34),
    tf.add(d12, tf.mul(d34, two)),
    tf.add(s12, tf.mul(s34, four)),
    tf.add(tf.add(d12, tf.mul(d34, eight)), m5),
  ];
}

/** Output transform Y = A^T M A, M given as alpha^2 factors [tiles, Cout] (k = alpha p + q): y[a][b]. */
function outputAdds(mk: tf.Tensor2D[], alpha: number): tf.Tensor2D[][] {
  const cols = Array.from({ length: alpha }, (_, q) =>
    outputRow(Array.from({ length: alpha }, (_, p) => mk[alpha * p + q]!)),
  );
  // cols[q][a] = sum_p AT[a][p] M[p][q]
  return cols[0]!.map((_, a) => outputRow(cols.map((c) => c[a]!)));
}

/**
 * Variant `f2-dw` etc.: tile (f2: F(2x2,3x3), f4: F(4x4,3x3)) and input transform (dw: one depthwise conv of
 * multiplier alpha^2; sep: 1-D transforms by two depthwise convs of multiplier alpha; dw1: alpha^2 depthwise
 * convs of multiplier 1, no transpose); the output transform is always by adds and two stacks.
 */
function winograd(variant: string, w: tf.Tensor4D): Plan {
  const [, , cin, cout] = w.shape;
  const [tile, inputKind] = variant.split('-') as [string, string];
  const [bt, g] = tile === 'f4' ? [BT4, G4] : [BT2, G2];
  const alpha = bt.length;
  const m = alpha - 2;
  const a2 = alpha * alpha;
  const u = transformWeights(w, g);
  const uk = tf.unstack(u) as tf.Tensor2D[];
  const kb = kron(bt);
  const dwAll = tf.tidy(() => {
    // [alpha, alpha, cin, alpha^2]: entry (i, j, c, k) = kron(BT)[k][(i, j)]
    const data = new Float32Array(a2 * cin * a2);
    for (let ij = 0; ij < a2; ij++)
      for (let c = 0; c < cin; c++) for (let k = 0; k < a2; k++) data[(ij * cin + c) * a2 + k] = kb[k]![ij]!;
    return tf.tensor4d(data, [alpha, alpha, cin, a2]);
  });
  const dwOne = kb.map((row) => {
    const data = new Float32Array(a2 * cin);
    for (let ij = 0; ij < a2; ij++) for (let c = 0; c < cin; c++) data[ij * cin + c] = row[ij]!;
    return tf.tensor4d(data, [alpha, alpha, cin, 1]);
  });
  const sepRows = sepFilter(bt, cin, true);
  const sepCols = sepFilter(bt, cin * alpha, false);

  const input = (x: tf.Tensor4D): { v: tf.Tensor2D[]; th: number; tw: number } => {
    const [n, h, wd] = x.shape;
    const { th, tw, pad } = padFor(h, wd, m, 3);
    const t = n * th * tw;
    const v = tf.tidy(() => {
      const xp = tf.pad(x, pad);
      if (inputKind === 'dw1')
        return dwOne.map(
          (f) => tf.reshape(tf.depthwiseConv2d(xp, f, m, 'valid'), [t, cin]) as tf.Tensor2D,
        ) as tf.Tensor2D[];
      let d: tf.Tensor4D;
      if (inputKind === 'dw') d = tf.depthwiseConv2d(xp, dwAll, m, 'valid');
      else {
        const r = tf.depthwiseConv2d(xp, sepRows, [m, 1], 'valid'); // [n, th, wp, cin * alpha]
        d = tf.depthwiseConv2d(r, sepCols, [1, m], 'valid'); // [n, th, tw, cin * alpha * alpha], (c, p, q)
      }
      const vt = tf.transpose(tf.reshape(d, [t, cin, a2]), [2, 0, 1]);
      return tf.split(vt, a2).map((p) => tf.reshape(p, [t, cin]) as tf.Tensor2D) as tf.Tensor2D[];
    });
    return { v, th, tw };
  };
  const uConv = uk.map((k) => tf.reshape(k, [1, 1, cin, cout]) as tf.Tensor4D);
  // `--products conv1x1`: each product as a 1x1 tf.conv2d on [1, tiles, 1, Cin] instead of a matMul
  const products = (v: tf.Tensor2D[]): tf.Tensor2D[] =>
    values.products === 'conv1x1'
      ? v.map((vk, k) =>
          tf.tidy(
            () =>
              tf.reshape(
                tf.conv2d(tf.reshape(vk, [1, vk.shape[0], 1, cin]) as tf.Tensor4D, uConv[k]!, 1, 'valid'),
                [vk.shape[0], cout],
              ) as tf.Tensor2D,
          ),
        )
      : v.map((vk, k) => tf.matMul(vk, uk[k]!) as tf.Tensor2D);
  const output = (mk: tf.Tensor2D[], n: number, th: number, tw: number, h: number, wd: number): tf.Tensor4D =>
    tf.tidy(() => interleave(outputAdds(mk, alpha), n, th, tw, h, wd));
  const run = (x: tf.Tensor4D) => {
    const [n, h, wd] = x.shape;
    const { v, th, tw } = input(x);
    const mk = products(v);
    tf.dispose(v);
    const y = output(mk, n, th, tw, h, wd);
    tf.dispose(mk);
    return y;
  };
  const stages = (x: tf.Tensor4D) => {
    const [n, h, wd] = x.shape;
    let c = process.cpuUsage();
    const { v, th, tw } = input(x);
    const inCpu = cpuMs(process.cpuUsage(c));
    c = process.cpuUsage();
    const mk = products(v);
    const mulCpu = cpuMs(process.cpuUsage(c));
    tf.dispose(v);
    c = process.cpuUsage();
    const y = output(mk, n, th, tw, h, wd);
    const outCpu = cpuMs(process.cpuUsage(c));
    tf.dispose([...mk, y]);
    return { input: inCpu, products: mulCpu, output: outCpu };
  };
  return {
    name: variant,
    run,
    stages,
    dispose: () => tf.dispose([u, ...uk, ...uConv, dwAll, ...dwOne, sepRows, sepCols]),
  };
}

interface Shape {
  net: string;
  n: number;
  hw: number;
  cin: number;
  cout: number;
  /** How many of the net's 3x3 stride-1 convs have this shape (the totals weigh by it). */
  count: number;
}
const shapes: Shape[] = [];
// VGG16's 3x3 convs but the first (3 input channels): 12 convs, 15.3 G multiply-adds an image
if (values.only !== 'resnet')
  for (const n of values.batches.split(',').map(Number))
    for (const [hw, cin, cout, count] of [
      [224, 64, 64, 1],
      [112, 64, 128, 1],
      [112, 128, 128, 1],
      [56, 128, 256, 1],
      [56, 256, 256, 2],
      [28, 256, 512, 1],
      [28, 512, 512, 2],
      [14, 512, 512, 3],
    ] as const)
      shapes.push({ net: `vgg16 n${n}`, n, hw, cin, cout, count });
// ResNet-50's stride-1 3x3 convs (conv2 of the bottlenecks but the first of layers 2-4, which has stride 2); batch
// 1, or with `--only resnet` the given batches (CRP's conditions run as a batch)
if (values.only !== 'vgg')
  for (const n of values.only === 'resnet' ? values.batches.split(',').map(Number) : [1])
    for (const [hw, c, count] of [
      [56, 64, 3],
      [28, 128, 3],
      [14, 256, 5],
      [7, 512, 2],
    ] as const)
      shapes.push({ net: `resnet50 n${n}`, n, hw, cin: c, cout: c, count });

const runs = Number(values.runs);
const shapeLabel = (name: string, args: Parameters<tf.KernelFunc>[0]) =>
  `${name} ${Object.values(args.inputs)
    // FusedConv2D's absent inputs (no prelu weights) are undefined
    .filter((t) => t !== undefined && t !== null)
    .map((t) => (t as tf.TensorInfo).shape.join('x'))
    .join(' ')}`;
const tallies = values.kernels ? tallyWasmKernels(shapeLabel) : undefined;
const variants = values.variants.split(',');
console.log(`threads ${values.threads}, runs ${runs}, load ${loadavg()[0]!.toFixed(1)}`);
/** Per net: the CPU ms (medians) of each plan summed over the net's convs, weighed by their counts. */
const totals = new Map<string, Map<string, number>>();
for (const s of shapes) {
  const x = tf.randomNormal([s.n, s.hw, s.hw, s.cin], 0, 1, 'float32', 1) as tf.Tensor4D;
  const w = tf.randomNormal(
    [3, 3, s.cin, s.cout],
    0,
    Math.sqrt(2 / (9 * s.cin)),
    'float32',
    2,
  ) as tf.Tensor4D;
  const plans: Plan[] = [
    { name: 'direct', run: (xx) => tf.conv2d(xx, w, 1, 'same'), dispose: () => {} },
    ...variants.map((v) =>
      v === 'kernel'
        ? {
            // @crp/backend's Winograd Conv2D kernel, forced for every size
            name: v,
            run: (xx: tf.Tensor4D) => {
              installWasmWinograd({ applies: () => true });
              try {
                return tf.conv2d(xx, w, 1, 'same');
              } finally {
                uninstallWasmWinograd();
              }
            },
            dispose: () => {},
          }
        : winograd(v, w),
    ),
  ];
  const ref = plans[0]!.run(x);
  const refMax = tf.tidy(() => tf.max(tf.abs(ref)).dataSync()[0]!);
  const errs = plans.map((p) =>
    tf.tidy(() => {
      const y = p.run(x);
      return tf.max(tf.abs(tf.sub(y, ref))).dataSync()[0]!;
    }),
  );
  ref.dispose();
  const before = tf.memory().numTensors;
  const cpu = plans.map(() => [] as number[]);
  const wall = plans.map(() => [] as number[]);
  for (let r = 0; r < runs; r++)
    plans.forEach((p, i) => {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const y = p.run(x);
      wall[i]!.push(performance.now() - t0);
      cpu[i]!.push(cpuMs(process.cpuUsage(c0)));
      y.dispose();
    });
  const leaked = tf.memory().numTensors - before;
  const net = totals.get(s.net) ?? new Map<string, number>();
  plans.forEach((p, i) => {
    net.set(p.name, (net.get(p.name) ?? 0) + s.count * median(cpu[i]!));
  });
  // the better of direct and each Winograd variant, shape by shape
  for (let i = 1; i < plans.length; i++) {
    const key = `best of direct and ${plans[i]!.name}`;
    net.set(key, (net.get(key) ?? 0) + s.count * Math.min(median(cpu[0]!), median(cpu[i]!)));
  }
  totals.set(s.net, net);
  const macs = (s.n * s.hw * s.hw * s.cin * s.cout * 9) / 1e9;
  const d = median(cpu[0]!);
  const line = plans
    .map(
      (p, i) =>
        `${p.name} ${median(cpu[i]!).toFixed(1)}/${median(wall[i]!).toFixed(1)}` +
        (i === 0
          ? ''
          : ` (x${(d / median(cpu[i]!)).toFixed(2)}, err ${(errs[i]! / refMax).toExponential(1)})`),
    )
    .join('  ');
  console.log(
    `${s.net} ${s.hw}x${s.hw} ${s.cin}->${s.cout} x${s.count} (${macs.toFixed(2)} GMAC) CPU/wall ms: ${line}${leaked ? ` LEAK ${leaked}` : ''}`,
  );
  if (tallies !== undefined)
    for (const p of plans) {
      tallies.clear();
      for (let r = 0; r < runs; r++) p.run(x).dispose();
      console.log(`  ${p.name} kernels:`);
      printKernelTable(tallies, { runs, top: 8, nameWidth: 50 });
    }
  if (values.stages)
    for (const p of plans.slice(1)) {
      const st = Array.from({ length: runs }, () => p.stages!(x));
      const keys = Object.keys(st[0]!);
      console.log(
        `  ${p.name} stages CPU ms: ${keys.map((k) => `${k} ${median(st.map((o) => o[k]!)).toFixed(1)}`).join(', ')}`,
      );
    }
  plans.forEach((p) => {
    p.dispose();
  });
  tf.dispose([x, w]);
}
for (const [net, t] of totals) {
  const d = t.get('direct')!;
  console.log(
    `${net} total CPU ms: ${[...t].map(([k, v]) => `${k} ${v.toFixed(0)}${k === 'direct' ? '' : ` (x${(d / v).toFixed(2)})`}`).join(', ')}`,
  );
}
console.log(`load ${loadavg()[0]!.toFixed(1)}`);
