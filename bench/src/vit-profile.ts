/**
 * Where the time of a CRP run on vit_b_16 goes, node by node (manual; the figures of bench/README.md's `vit`
 * section). The bench suite's model (seeded formula weights, 224 px, AttnLRP) and conditions (8 MLP neurons of
 * the last block); prints the forward pass, one backward pass of batch 1 and one of batch 8 broken down by node
 * group, then CRP with one and with eight conditions. Wall and CPU time side by side (the machine is shared).
 *
 *   pnpm --filter @crp/bench exec tsx src/vit-profile.ts [--threads N] [--layers L]
 */
import { parseArgs } from 'node:util';
import { selectBackend } from '@crp/backend';
import { CondAttribution, type Condition, disposeCondResult } from '@crp/core';
import { torchVitFromStateDict, type VitConfig } from '@crp/models';
import { vitFormulaImage, vitFormulaStateDict } from '@crp/testing/vit-formula';
import * as tf from '@tensorflow/tfjs-core';
import { vitB16Config } from './torch-fixtures.js';

const { values } = parseArgs({
  options: { threads: { type: 'string', default: 'auto' }, layers: { type: 'string', default: '12' } },
});
const choice = await selectBackend({
  prefer: ['wasm'],
  threads: values.threads === 'auto' ? 'auto' : Number(values.threads),
});
console.log(`backend ${tf.getBackend()} x${choice.threads}`);

const config: VitConfig = vitB16Config({ numLayers: Number(values.layers) });
const model = torchVitFromStateDict(vitFormulaStateDict(config), { numHeads: config.numHeads });
const image = vitFormulaImage(config);
const crp = new CondAttribution(model, { composite: 'attn_lrp', canonizers: [] });
const attributor = crp.attributor;
const last = `encoder.layers.encoder_layer_${config.numLayers - 1}.mlp.1`;

/** Wall and CPU milliseconds of `fn`. */
function timed<T>(fn: () => T): { value: T; wall: number; cpu: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = fn();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { value, wall, cpu: (c.user + c.system) / 1000 };
}

const fmt = (t: { wall: number; cpu: number }) =>
  `${(t.wall / 1000).toFixed(2)} s wall, ${(t.cpu / 1000).toFixed(2)} s CPU`;

/** A node's group: the patch embedding, the head, or a block's part (its layers without the block index). */
function group(id: string): string {
  const block = /^encoder\.layers\.encoder_layer_\d+\.(.*)$/.exec(id);
  if (block) return `block.${block[1]!.replace(/@\d+$/, '')}`;
  return id;
}

/** One backward pass from the logits (relevance = the logit of class 0 on `rows` rows), timed per group. */
function profileBackward(pass: ReturnType<typeof attributor.forward>, rows: number) {
  const perGroup = new Map<string, number>();
  let prev: string | undefined;
  let t = performance.now();
  const relevance = tf.tidy(() => {
    const out = pass.output(attributor.graph.outputId);
    const mask = tf.oneHot(tf.tensor1d([0], 'int32'), out.shape[1]!);
    return tf.mul(tf.ones([rows, 1]), tf.mul(out, mask));
  });
  const run = timed(() =>
    attributor.backward(pass, {
      from: attributor.graph.outputId,
      relevance,
      transform: (id) => {
        // wasm's kernels are synchronous: the time since the last call is the previous node's backward
        const now = performance.now();
        if (prev !== undefined) perGroup.set(group(prev), (perGroup.get(group(prev)) ?? 0) + now - t);
        prev = id;
        t = now;
        return undefined;
      },
    }),
  );
  for (const r of run.value.values()) r.dispose();
  relevance.dispose();
  console.log(`backward, batch ${rows}: ${fmt(run)}`);
  const sorted = [...perGroup].sort((a, b) => b[1] - a[1]).slice(0, 12);
  for (const [name, ms] of sorted) console.log(`  ${(ms / 1000).toFixed(2).padStart(7)} s  ${name}`);
}

const fwd = timed(() => attributor.forward(image));
console.log(`forward, batch 1: ${fmt(fwd)}`);
// the first backward pass prepares every rule (cached in the pass): time it apart
profileBackward(fwd.value, 1);
profileBackward(fwd.value, 1);
profileBackward(fwd.value, 8);
fwd.value.dispose();

const conditions: Condition[] = Array.from({ length: 8 }, (_, k) => ({ y: [0], [last]: [k * 7] }));
for (const n of [1, 8]) {
  const run = timed(() => {
    const r = crp.run(image, conditions.slice(0, n));
    r.heatmap!.dataSync();
    disposeCondResult(r);
  });
  console.log(`CRP, ${n} condition${n === 1 ? '' : 's'} on ${last}: ${fmt(run)}`);
}
crp.dispose();
image.dispose();
model.dispose();
console.log(`tensors left: ${tf.memory().numTensors}`);
