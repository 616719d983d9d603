import { Attributor, disposeResult, resnetCanonizer } from '@crp/lrp';
import { type StateDict, torchResNetFromStateDict, torchResNetShapes } from '@crp/models';
import { formulaImage, formulaStateDict } from '@crp/testing/torch-weights';
import * as tf from '@tensorflow/tfjs-core';
import { type BenchResult, result, type SuiteContext, timeRuns } from '../measure.js';

/**
 * The two ways to run a grouped convolution (PyTorch's Conv2d(groups)) with TF.js ops, at the shapes of
 * resnext50_32x4d's conv2 layers (32 groups): one tf.conv2d per group on the split input, concatenated; or one
 * tf.conv2d on the block-diagonal dense kernel, made once (as the engine caches its transpose kernel) or in every
 * call (as the forward of @crp/lrp's groupedConv2d). This chose @crp/lrp's grouped convolution (ops/grouped-conv.ts:
 * block-diagonal up to 2^24 kernel values). Then the whole
 * thing: an EpsilonPlusFlat heatmap of resnext50_32x4d.
 */
export async function groupedConvSuite(context: SuiteContext): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  const groups = 32;
  // [spatial side at 224 px, width] of layer1..4's conv2 (stride 1 form)
  const layers: [number, number][] = context.quick
    ? [[14, 128]]
    : [
        [56, 128],
        [28, 256],
        [14, 512],
        [7, 1024],
      ];
  for (const size of context.quick ? [64] : [64, 224]) {
    for (const [side224, width] of layers) {
      const side = Math.max(1, Math.round((side224 * size) / 224));
      const x = tf.randomNormal([1, side, side, width]) as tf.Tensor4D;
      const kernel = tf.randomNormal([3, 3, width / groups, width]) as tf.Tensor4D;
      const dense = tf.tidy(() => {
        const per = width / groups;
        const blocks = tf.split(kernel, groups, 3).map((b, k) =>
          tf.pad(b, [
            [0, 0],
            [0, 0],
            [k * per, (groups - 1 - k) * per],
            [0, 0],
          ]),
        );
        return tf.concat(blocks, 3) as tf.Tensor4D;
      });
      const split = await timeRuns(() => {
        // one conv per group
        const y = tf.tidy(() => {
          const ks = tf.split(kernel, groups, 3) as tf.Tensor4D[];
          const xs = tf.split(x, groups, 3) as tf.Tensor4D[];
          return tf.concat(
            xs.map((xi, i) => tf.conv2d(xi, ks[i]!, 1, 'same')),
            3,
          );
        });
        y.dataSync();
        y.dispose();
      });
      const block = await timeRuns(() => {
        const y = tf.conv2d(x, dense, 1, 'same');
        y.dataSync();
        y.dispose();
      });
      // as @crp/lrp's groupedConv2d: the block-diagonal kernel made in every call
      const built = await timeRuns(() => {
        const y = tf.tidy(() => {
          const per = width / groups;
          const blocks = tf.split(kernel, groups, 3).map((b, k) =>
            tf.pad(b, [
              [0, 0],
              [0, 0],
              [k * per, (groups - 1 - k) * per],
              [0, 0],
            ]),
          );
          return tf.conv2d(x, tf.concat(blocks, 3) as tf.Tensor4D, 1, 'same');
        });
        y.dataSync();
        y.dispose();
      });
      const shape = `${side}x${side}x${width}`;
      out.push(result(`grouped conv ${shape} (${size}px): conv2d per group`, 'ms', split.runs));
      out.push(
        result(`grouped conv ${shape} (${size}px): one conv2d, block-diagonal kernel`, 'ms', block.runs),
      );
      out.push(
        result(`grouped conv ${shape} (${size}px): block-diagonal kernel made per call`, 'ms', built.runs),
      );
      context.log(
        `${shape}: per group ${split.median.toFixed(1)} ms, block-diagonal ${block.median.toFixed(1)} ms (made per call ${built.median.toFixed(1)} ms)`,
      );
      tf.dispose([x, kernel, dense]);
    }
  }

  const size = context.quick ? 32 : 64;
  const spec = {
    block: 'bottleneck',
    layers: [3, 4, 6, 3],
    classes: 10,
    groups: 32,
    widthPerGroup: 4,
  } as const;
  const model = torchResNetFromStateDict(formulaStateDict(torchResNetShapes(spec), 32) as StateDict, {
    inputSize: size,
  });
  const attributor = new Attributor(model, {
    composite: 'epsilon_plus_flat',
    canonizers: [resnetCanonizer()],
  });
  const input = formulaImage(1, size, size);
  const heatmap = await timeRuns(() => {
    const r = attributor.attribute(input, { target: 0 });
    r.relevance.dataSync();
    disposeResult(r);
  });
  out.push(result(`resnext50_32x4d ${size}px EpsilonPlusFlat heatmap per image`, 'ms', heatmap.runs));
  input.dispose();
  attributor.dispose();
  model.dispose();
  return out;
}
