import { mkdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Attributor, compositeByName, disposeResult } from '@crp/lrp';
import { imgify, overlayHeatmap } from '@crp/vis';
import { writePng } from '@crp/vis/node';
import * as tf from '@tensorflow/tfjs-core';
import { inputSizeArg } from '../args.js';
import { NORMALIZATIONS, readModelInput } from '../images.js';
import { openModel } from '../load-model.js';
import { ProgressBar } from '../progress.js';
import { UsageError } from '../usage-error.js';

export const explainUsage = `crp explain --model <model.json|dir|.safetensors> <image ...> [options]

Writes an LRP heatmap and an overlay (PNG) for every image.

  --model PATH        TF.js model (model.json or its directory) or a torchvision VGG or ResNet (.pth/.safetensors)
  --target N|pred     class to explain (default: the predicted class)
  --composite NAME    epsilon_plus_flat (default), epsilon_plus, epsilon_alpha2_beta1(_flat), epsilon_gamma_box
  --low X --high Y    input range for epsilon_gamma_box (after normalisation)
  --input-size N      input size of a PyTorch model (.pth/.safetensors): N or HxW (default 224), or of an
                      .onnx model whose input size is dynamic
  --normalize NAME    imagenet: (x - mean) / std after scaling pixels to [0, 1]
  --cmap NAME         colour map of the heatmap (default bwr)
  --out DIR           output directory (default out/explain)
  --json              print the results as JSON on stdout`;

export interface ExplainedImage {
  image: string;
  predicted: number;
  target: number;
  logit: number;
  relevanceSum: number;
  heatmap: string;
  overlay: string;
}

export async function explain(argv: string[], json: boolean): Promise<ExplainedImage[]> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      target: { type: 'string', default: 'pred' },
      composite: { type: 'string', default: 'epsilon_plus_flat' },
      low: { type: 'string' },
      high: { type: 'string' },
      normalize: { type: 'string' },
      'input-size': { type: 'string' },
      cmap: { type: 'string', default: 'bwr' },
      out: { type: 'string', default: join('out', 'explain') },
    },
  });
  if (values.model === undefined) throw new UsageError('--model is required');
  if (positionals.length === 0) throw new UsageError('give at least one image file');
  const normalize = values.normalize === undefined ? undefined : NORMALIZATIONS[values.normalize];
  if (values.normalize !== undefined && normalize === undefined) {
    throw new UsageError(
      `unknown --normalize '${values.normalize}'; valid: ${Object.keys(NORMALIZATIONS).join(', ')}`,
    );
  }
  const target = values.target === 'pred' ? undefined : Number(values.target);
  if (target !== undefined && !Number.isInteger(target))
    throw new UsageError(`--target must be a class index or 'pred', got '${values.target}'`);
  const boxOptions =
    values.low !== undefined || values.high !== undefined
      ? { low: Number(values.low), high: Number(values.high) }
      : {};
  const composite = compositeByName(values.composite!, boxOptions);

  const model = await openModel(values.model, inputSizeArg(values['input-size']));
  const lrp = new Attributor(model, { composite });
  await mkdir(values.out!, { recursive: true });
  const progress = new ProgressBar('explain', positionals.length, process.stderr, json);
  const results: ExplainedImage[] = [];
  try {
    for (const [i, path] of positionals.entries()) {
      const input = await readModelInput(path, lrp.graph.inputShape, normalize);
      try {
        const logits = lrp.forward(input.tensor);
        const predicted = tf.tidy(() => tf.argMax(logits.prediction, -1).dataSync()[0]!);
        logits.dispose();
        const cls = target ?? predicted;
        const result = lrp.attribute(input.tensor, { target: cls });
        try {
          const heat = tf.tidy(() => tf.sum(result.relevance, -1));
          const stem = basename(path, extname(path));
          const heatmapFile = join(values.out!, `${stem}.heatmap.png`);
          const overlayFile = join(values.out!, `${stem}.overlay.png`);
          const heatData = tf.tidy(() => tf.squeeze(heat, [0]));
          await writePng(heatmapFile, imgify(heatData, { cmap: values.cmap!, symmetric: true }));
          const resized = tf.tidy(() =>
            tf.squeeze(
              tf.image.resizeBilinear(tf.expandDims(heatData, -1) as tf.Tensor3D, [
                input.raster.height,
                input.raster.width,
              ]),
              [2],
            ),
          );
          await writePng(
            overlayFile,
            overlayHeatmap(input.raster, resized, { cmap: values.cmap!, weighted: true }),
          );
          results.push({
            image: path,
            predicted,
            target: cls,
            logit: result.prediction.dataSync()[cls]!,
            relevanceSum: tf.tidy(() => tf.sum(heat).dataSync()[0]!),
            heatmap: heatmapFile,
            overlay: overlayFile,
          });
          tf.dispose([heat, heatData, resized]);
        } finally {
          disposeResult(result);
        }
      } finally {
        input.tensor.dispose();
      }
      progress.update(i + 1, basename(path));
    }
  } finally {
    lrp.dispose();
    model.dispose();
  }
  if (!json) {
    for (const r of results) {
      console.log(
        `${r.image}: class ${r.target} (predicted ${r.predicted}, logit ${r.logit.toFixed(3)}) -> ${r.heatmap}, ${r.overlay}`,
      );
    }
  }
  return results;
}
