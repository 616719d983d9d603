/**
 * Explaining a torchvision-style VGG that was trained in PyTorch and saved as safetensors: import it
 * (`features.N` / `classifier.N`, NCHW kernels to NHWC, the flatten order of the first dense layer), check its
 * logits against PyTorch's, list its layers with the LRP rule each gets under EpsilonGammaBox, draw LRP
 * heatmaps, build a CRP concept table (which channels of a layer carry a class, and where they are), and run
 * the whole concept study (`studyFiles` of @crp/study, what `crp study` runs) on a .pth model and an image folder.
 *
 *   npx tsx examples/pytorch-vgg/src/main.ts [MODEL.safetensors SIZE] [OUT_DIR]   (from the repository root)
 *
 * Without arguments it uses the small VGG that @crp/models' tests check against PyTorch
 * (packages/models/test/fixtures/vgg-small-bn.safetensors: cfg [8, M, 16, M] with batch norm, 10 classes,
 * He-initialised random weights; see packages/models/fixtures-src/make-torch-vgg.py).
 */

import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { selectBackend } from '@crp/backend';
import { ChannelConcept, CondAttribution, disposeCondResult } from '@crp/core';
import { Attributor, disposeResult, epsilonGammaBox } from '@crp/lrp';
import { IMAGENET } from '@crp/models';
import { mnist, readTorchVgg } from '@crp/models/node';
import { studyFiles } from '@crp/study/node';
import { conceptTable, imageGrid, imgify, type RasterImage, resize } from '@crp/vis';
import { writePng, writeReport } from '@crp/vis/node';
import * as tf from '@tensorflow/tfjs-core';

const FIXTURES = resolve(import.meta.dirname, '../../../packages/models/test/fixtures');
const [argModel, argSize, argOut] = process.argv.slice(2);
const MODEL = resolve(argModel ?? join(FIXTURES, 'vgg-small-bn.safetensors'));
const SIZE = Number(argSize ?? 32);
const OUT = join(resolve(argOut ?? 'out'), 'pytorch-vgg');

/** A [H, W] array as an image: grey for inputs, red/blue (for/against the class) for heatmaps. */
function picture(t: tf.Tensor, kind: 'input' | 'heat'): RasterImage {
  const data = tf.tidy(() => tf.reshape(t, [SIZE, SIZE]));
  const img =
    kind === 'input'
      ? imgify(data, { cmap: 'gray', vmin: 0, vmax: 1 })
      : imgify(data, { cmap: 'bwr', symmetric: true });
  data.dispose();
  return resize(img, { scale: 3 });
}

async function main(): Promise<void> {
  await mkdir(OUT, { recursive: true });
  console.log(`backend: ${(await selectBackend()).backend}`);

  // 1. import: layers keep torchvision's module names (features.0, ..., classifier.6; layerNames: 'keras' renames)
  const model = await readTorchVgg(MODEL, { inputShape: [SIZE, SIZE, 3] });
  console.log(`imported ${MODEL}: ${model.countParams()} parameters`);

  // the fixture comes with PyTorch's own logits: the import must reproduce them
  if (argModel === undefined) {
    const ref = JSON.parse(readFileSync(join(FIXTURES, 'vgg-small.json'), 'utf8'));
    const { shape, data } = ref.inputs['32'] as { shape: [number, number, number, number]; data: number[] };
    const logits = tf.tidy(
      () => model.predict(tf.transpose(tf.tensor4d(data, shape), [0, 2, 3, 1])) as tf.Tensor,
    );
    const torch = ref.logits['vgg-small-bn.safetensors']['32'] as number[];
    const diff = Math.max(...Array.from(logits.dataSync(), (v, i) => Math.abs(v - torch[i]!)));
    console.log(`largest difference to PyTorch's logits: ${diff.toExponential(1)}`);
    logits.dispose();
  }

  // 2. the layers as the toolkit sees them, with the LRP rule each gets (as `crp layers --model FILE` prints)
  // EpsilonGammaBox: ZBox for the first layer (needs the input range), Gamma for convs, Epsilon for dense
  const lrp = new Attributor(model, { composite: epsilonGammaBox({ low: 0, high: 1 }) });
  for (const node of lrp.graph.nodes) {
    const rule = lrp.ruleOf(node.id);
    const params = Object.entries(rule.params)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    console.log(
      `  ${node.id.padEnd(19)} ${node.className.padEnd(20)} [${node.outputShape.join(', ')}]`.padEnd(68) +
        ` ${rule.name} ${params}`,
    );
  }

  // 3. LRP heatmaps for eight digits (grey in all three channels, pixels in [0, 1]) and the predicted class
  const x = mnist({ train: 8, validation: 0, inputSize: [SIZE, SIZE], channels: 3, seed: 3 }).train.images;
  const predicted = Array.from(tf.tidy(() => tf.argMax(model.predict(x) as tf.Tensor, -1)).dataSync());
  const result = lrp.attribute(x, { target: predicted });
  const heat = tf.sum(result.relevance, -1);
  const tiles = predicted.flatMap((_, i) => [
    picture(tf.mean(tf.slice(x, i, 1), -1), 'input'),
    picture(tf.slice(heat, i, 1), 'heat'),
  ]);
  await writePng(join(OUT, 'lrp-heatmaps.png'), imageGrid(tiles, { columns: 4 }));
  console.log(`predicted classes: ${predicted.join(' ')}`);
  disposeResult(result);
  heat.dispose();

  // 4. a CRP concept table: the channels of the last conv that carry the first image's predicted class
  const layer = model.layers.filter((l) => l.getClassName() === 'Conv2D').at(-1)!.name;
  const crp = new CondAttribution(lrp); // reuses the Attributor (and its composite)
  const image = tf.slice(x, 0, 1);
  const cls = predicted[0]!;
  const scored = crp.run(image, [{ y: [cls] }], { recordLayers: [layer], heatmap: false });
  const shares = Array.from(
    new ChannelConcept().attribute(scored.relevances[layer]!, { absNorm: true }).dataSync(),
  );
  const top = shares
    .map((share, channel) => ({ channel, share }))
    .sort((a, b) => Math.abs(b.share) - Math.abs(a.share))
    .slice(0, 6);
  const cond = crp.run(
    image,
    top.map((t) => ({ y: [cls], [layer]: [t.channel] })),
  );
  console.log(`\nclass ${cls}, layer ${layer}:\n  concept  relevance share`);
  for (const t of top)
    console.log(`  #${String(t.channel).padEnd(6)} ${(t.share * 100).toFixed(1).padStart(6)}%`);
  const section = conceptTable(
    top.map((t, i) => ({
      concept: t.channel,
      layer,
      relevance: t.share,
      images: [picture(tf.slice(cond.heatmap!, i, 1), 'heat')],
    })),
    {
      title: `Concepts of ${layer} for class ${cls}`,
      description: 'Share of the class relevance per channel, and where it is.',
    },
  );
  await writeReport(join(OUT, 'concepts.html'), {
    title: 'A PyTorch VGG explained',
    meta: { model: MODEL.split('/').at(-1)!, composite: 'EpsilonGammaBox' },
    sections: [
      {
        kind: 'images',
        title: 'Input',
        items: [{ image: picture(tf.mean(image, -1), 'input'), caption: `class ${cls}` }],
      },
      section,
    ],
  });
  disposeCondResult(scored);
  disposeCondResult(cond);
  lrp.dispose();
  console.log(`\nwrote ${join(OUT, 'lrp-heatmaps.png')} and ${join(OUT, 'concepts.html')}`);

  // 5. the whole concept study on a PyTorch model and an image folder, as `crp study` runs it: a small VGG with
  // batch norm trained in PyTorch on synthetic "mitosis"/"normal" patches (packages/study/fixtures-src/)
  const studyFixtures = resolve(import.meta.dirname, '../../../packages/study/test/fixtures');
  const study = await studyFiles({
    model: join(studyFixtures, 'vgg-bn-2class.pth'),
    data: join(studyFixtures, 'patches'),
    target: 'mitosis',
    inputSize: 48,
    ...IMAGENET,
    samples: 16,
    region: { centerSquare: 16 },
    out: join(OUT, 'study'),
  });
  const found = study.result.atlas.layers['features.8']!.ranking[0]!;
  console.log(
    `study: accuracy ${(study.result.evaluation.accuracy * 100).toFixed(1)}%; concept ${found.concept} in features.8 in ${found.votes}/${study.result.atlas.samples} samples -> ${study.report}`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
