/**
 * How far this engine lands from the vit_b_16 AttnLRP / CP-LRP golden values (vendor/reference/vit-b-16) when the
 * image moves by one float32 ulp: the counterpart of scripts/golden/vit_b_16_float32_spread.py for PyTorch. The
 * case's image, then `--trials` copies with every pixel moved to its float32 neighbour above or below, or kept
 * (seeded, a third each; equally valid float32 inputs of the same image), each against the committed float64
 * golden values and the case's tolerance. Changes no file. Manual (minutes per trial on two cores):
 *
 *   pnpm --filter @crp/bench exec tsx src/vit-spread.ts [--case attn_lrp] [--trials 7] [--threads 2]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { selectBackend } from '@crp/backend';
import { mulberry32 } from '@crp/common';
import * as lrp from '@crp/lrp';
import { torchVitFromStateDict, type VitConfig } from '@crp/models';
import { referencePath } from '@crp/testing/reference';
import { vitFormulaStateDict, vitFormulaValues } from '@crp/testing/vit-formula';
import * as tf from '@tensorflow/tfjs-core';

const { values } = parseArgs({
  options: {
    case: { type: 'string', default: 'attn_lrp' },
    trials: { type: 'string', default: '7' },
    threads: { type: 'string', default: '2' },
  },
});
const dir = referencePath('vit-b-16', 'vit');
interface Golden {
  data: number[];
}
const c = JSON.parse(readFileSync(join(dir, 'cases', `${values.case}__vit_b_16.json`), 'utf8')) as {
  composite: 'attn_lrp' | 'cp_lrp';
  targets: number[];
  heatmap: Golden;
  tokenRelevance: Record<string, Golden>;
  float32: { tolerance: Record<string, { value: number }> };
};
const file = JSON.parse(readFileSync(join(dir, 'vit_b_16_formula.json'), 'utf8')) as {
  config: VitConfig;
  formula: { input: { name: string; scale: number } };
};

await selectBackend({ prefer: ['wasm'], threads: Number(values.threads) });
console.log(`backend ${tf.getBackend()}, image '${file.formula.input.name}', case ${values.case}`);

/** Each value moved to its float32 neighbour above or below, or kept (seeded, a third each). */
function oneUlpMoves(x: Float32Array, seed: number): Float32Array {
  const rng = mulberry32(seed);
  const out = Float32Array.from(x);
  const bits = new Int32Array(out.buffer);
  for (let i = 0; i < out.length; i++) {
    const r = rng();
    if (r < 1 / 3) continue;
    const up = r < 2 / 3;
    if (out[i] === 0) out[i] = up ? 2 ** -149 : -(2 ** -149);
    // the bit pattern of a float32 counts up with its magnitude: up means away from zero for x > 0
    else bits[i]! += out[i]! > 0 === up ? 1 : -1;
  }
  return out;
}

function relativeL2(ours: ArrayLike<number>, golden: ArrayLike<number>): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < golden.length; i++) {
    diff += (ours[i]! - golden[i]!) ** 2;
    norm += golden[i]! ** 2;
  }
  return Math.sqrt(diff / norm);
}

const model = torchVitFromStateDict(vitFormulaStateDict(file.config));
const attributor = new lrp.Attributor(model, { composite: c.composite, canonizers: [] });
const side = file.config.imageSize as number;
const { name, scale } = file.formula.input;
const image = tf.tensor4d(vitFormulaValues(name, side * side * 3, scale, 0), [1, side, side, 3]);
const pixels = image.dataSync() as Float32Array;
const tolerance = c.float32.tolerance;
const pos = 'encoder.pos_embedding';
const trials = Number(values.trials);
let failed = 0;
for (let trial = 0; trial <= trials; trial++) {
  const x = trial === 0 ? image : tf.tensor4d(oneUlpMoves(pixels, trial), image.shape);
  const t0 = performance.now();
  const result = attributor.attribute(x, { target: c.targets, recordLayers: [pos] });
  const [heatmap, perToken] = tf.tidy(() => [
    tf.sum(result.relevance, -1),
    tf.sum(result.relevances[pos]!, -1),
  ]);
  const h = relativeL2(heatmap!.dataSync(), c.heatmap.data);
  const p = relativeL2(perToken!.dataSync(), c.tokenRelevance[pos]!.data);
  const overH = h > tolerance.heatmap!.value;
  const overP = p > tolerance[`${pos} per token`]!.value;
  if (overH || overP) failed++;
  console.log(
    `${trial === 0 ? 'image as it is' : `one-ulp moves, seed ${trial}`}: heatmap rel L2 ${h.toExponential(3)}` +
      `${overH ? ' (over)' : ''}, pos_embedding per token ${p.toExponential(3)}${overP ? ' (over)' : ''}` +
      ` (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  tf.dispose([heatmap!, perToken!]);
  lrp.disposeResult(result);
  if (x !== image) x.dispose();
}
console.log(
  `tolerance: heatmap ${tolerance.heatmap!.value.toExponential(3)}, pos_embedding per token ` +
    `${tolerance[`${pos} per token`]!.value.toExponential(3)}; ${failed} of ${trials + 1} over`,
);
attributor.dispose();
model.dispose();
image.dispose();
