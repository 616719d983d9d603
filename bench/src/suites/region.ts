import { decompositionAtlas, fromTensors, regionRelevances } from '@crp/attribution';
import { CondAttribution } from '@crp/core';
import { smallVgg, vgg } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import { type BenchResult, result, type SuiteContext, timeRuns } from '../measure.js';

/**
 * Region relevance of every channel of every conv and hidden dense layer (issue 12): through the adjoint pass
 * one forward, one backward and one adjoint pass per batch of images replace one conditional backward pass per
 * concept (zennit-crp's definition: 15.8 s per image on the small VGG, ~30,000 s on VGG16).
 */
export async function regionSuite({ log, quick }: SuiteContext): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  {
    const model = smallVgg({ seed: 2 });
    const crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
    const n = quick ? 4 : 16;
    const images = tf.randomUniform([n, 64, 64, 3], 0, 1, 'float32', 5);
    const one = tf.slice(images, 0, 1);
    const region = { centerSquare: 32 };
    log(`region: small VGG 64x64, every channel of 5 conv + 1 dense layers (448 concepts), centre 32x32...`);
    const batch = await timeRuns(() => {
      regionRelevances(crp, images, region, { target: 0, batchSize: n });
    });
    const single = await timeRuns(() => {
      regionRelevances(crp, one, region, { target: 0 });
    });
    out.push(
      result(
        'attribution.region.small_vgg_64.per_image_ms',
        'ms',
        batch.runs,
        `batches of ${n} images (a region atlas's passes); one image alone: ${single.median.toFixed(1)} ms; zennit-crp 15,800 ms; goal <= 60`,
        (ms) => ms / n,
      ),
      result('attribution.region.small_vgg_64.batch1_ms', 'ms', single.runs, 'one image per pass'),
    );
    tf.dispose([images, one]);
    crp.dispose();
    model.dispose();
  }
  if (!quick) {
    const model = vgg('vgg16', { seed: 1 });
    const crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
    const image = tf.randomUniform([1, 224, 224, 3], 0, 1, 'float32', 5);
    log(
      'region: VGG16 224x224, every channel of 13 conv + 2 dense layers (12,416 concepts), centre 100x100...',
    );
    const region = await timeRuns(() => {
      regionRelevances(crp, image, { centerSquare: 100 }, { target: 0 });
    });
    out.push(
      result(
        'attribution.region.vgg16_224.per_image_ms',
        'ms',
        region.runs,
        'one image; zennit-crp ~30,000,000 ms extrapolated (12,416 backward passes); goal <= 5,000',
      ),
    );
    log(
      'region: VGG16 decomposition atlas of one image, 14 layers, top-5 concepts each into the layer below...',
    );
    const data = fromTensors(image, [0]);
    const atlas = await timeRuns(async () => {
      await decompositionAtlas(crp, data, { target: 0, concepts: 5, topK: 5, batchSize: 1 });
    });
    out.push(
      result(
        'attribution.decomposition_atlas.vgg16_224.per_image_ms',
        'ms',
        atlas.runs,
        'one image: global atlas pass + decomposition pass (5 dominant concepts of each of 14 layers)',
      ),
    );
    image.dispose();
    crp.dispose();
    model.dispose();
  }
  return out;
}
