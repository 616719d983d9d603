import { mkdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Attributor, disposeResult } from '@crp/lrp';
import { imgify, overlayHeatmap } from '@crp/vis';
import { writePng } from '@crp/vis/node';
import * as tf from '@tensorflow/tfjs-core';
import { numberArg } from '../args.js';
import { workStarts } from '../banner.js';
import { targetArg } from '../checks.js';
import { checkWritable } from '../files.js';
import { meanStd, readModelInput } from '../images.js';
import { openModel } from '../load-model.js';
import { compositeArg, HELP, inputRange, modelHelp, modelInputArgs, modelOptions } from '../model-data.js';
import { ProgressBar } from '../progress.js';
import { UsageError } from '../usage-error.js';

export const explainUsage = `crp explain --model M <image ...> [options]

Writes an LRP heatmap and an overlay (PNG) for every image.

${modelHelp}
${HELP.target}
                      (default pred: the predicted class of each image)
  --low X --high Y    input range for epsilon_gamma_box (default: the range of the normalised pixels)
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
      ...modelOptions,
      target: { type: 'string', default: 'pred' },
      low: { type: 'string' },
      high: { type: 'string' },
      cmap: { type: 'string', default: 'bwr' },
      out: { type: 'string', default: join('out', 'explain') },
    },
  });
  if (values.model === undefined) throw new UsageError('--model is required');
  if (positionals.length === 0) throw new UsageError('give at least one image file');
  const input = modelInputArgs(values);
  const normalize = meanStd(input);
  if ((values.low === undefined) !== (values.high === undefined))
    throw new UsageError('--low and --high go together');
  const bounds =
    values.low === undefined
      ? inputRange(input)
      : { low: numberArg('low', values.low)!, high: numberArg('high', values.high)! };
  const composite = compositeArg(values.composite!, bounds);
  await checkWritable('--out', values.out!, 'folder');

  const model = await openModel(values.model, input.inputSize);
  const lrp = new Attributor(model, { composite });
  const results: ExplainedImage[] = [];
  try {
    const target = values.target === 'pred' ? undefined : targetArg(values.target!, lrp.graph, undefined);
    workStarts();
    await mkdir(values.out!, { recursive: true });
    const progress = new ProgressBar('explain', positionals.length, process.stderr, json);
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
