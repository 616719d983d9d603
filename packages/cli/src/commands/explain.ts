import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Attributor, disposeResult } from '@crp/lrp';
import { imgify, overlayHeatmap } from '@crp/vis';
import { writePng } from '@crp/vis/node';
import * as tf from '@tensorflow/tfjs-core';
import { numberArg } from '../args.js';
import { workStarts } from '../banner.js';
import { targetArg } from '../checks.js';
import { checkReadable, checkWritable, outputStems } from '../files.js';
import { type ImageInput, meanStd, readModelInput } from '../images.js';
import {
  type CompositeChoice,
  compositeArg,
  HELP,
  inputRange,
  type ModelInputOptions,
  modelHelp,
  modelInputArgs,
  modelOptions,
  openAttribution,
} from '../model-data.js';
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

/** The command line of `crp explain`, checked. */
interface ExplainArgs {
  modelPath: string;
  images: string[];
  input: ModelInputOptions;
  normalize: ReturnType<typeof meanStd>;
  composite: CompositeChoice;
  targetSpec: string;
  cmap: string;
  out: string;
}

/** Parses and checks every argument that does not need the model. */
function parseExplainArgs(argv: string[]): ExplainArgs {
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
  return {
    modelPath: values.model,
    images: positionals,
    input,
    normalize,
    composite: compositeArg(values.composite, bounds),
    targetSpec: values.target!,
    cmap: values.cmap!,
    out: values.out!,
  };
}

/** <stem>.heatmap.png (the relevance summed over channels) and <stem>.overlay.png (it over the image). */
async function writeHeatmapAndOverlay(
  args: ExplainArgs,
  stem: string,
  raster: ImageInput['raster'],
  heat: tf.Tensor,
): Promise<{ heatmap: string; overlay: string }> {
  const heatmapFile = join(args.out, `${stem}.heatmap.png`);
  const overlayFile = join(args.out, `${stem}.overlay.png`);
  const heatData = tf.tidy(() => tf.squeeze(heat, [0]));
  await writePng(heatmapFile, imgify(heatData, { cmap: args.cmap, symmetric: true }));
  const resized = tf.tidy(() =>
    tf.squeeze(
      tf.image.resizeBilinear(tf.expandDims(heatData, -1) as tf.Tensor3D, [raster.height, raster.width]),
      [2],
    ),
  );
  await writePng(overlayFile, overlayHeatmap(raster, resized, { cmap: args.cmap, weighted: true }));
  tf.dispose([heatData, resized]);
  return { heatmap: heatmapFile, overlay: overlayFile };
}

/** One image: its prediction, the relevance of the target class (default: the predicted one), its PNGs. */
async function explainImage(
  args: ExplainArgs,
  lrp: Attributor,
  path: string,
  stem: string,
  target: number | undefined,
): Promise<ExplainedImage> {
  const input = await readModelInput(path, lrp.graph.inputShape, args.normalize);
  try {
    const logits = lrp.forward(input.tensor);
    const predicted = tf.tidy(() => tf.argMax(logits.prediction, -1).dataSync()[0]!);
    logits.dispose();
    const cls = target ?? predicted;
    const result = lrp.attribute(input.tensor, { target: cls });
    try {
      const heat = tf.tidy(() => tf.sum(result.relevance, -1));
      const files = await writeHeatmapAndOverlay(args, stem, input.raster, heat);
      const explained = {
        image: path,
        predicted,
        target: cls,
        logit: result.prediction.dataSync()[cls]!,
        relevanceSum: tf.tidy(() => tf.sum(heat).dataSync()[0]!),
        ...files,
      };
      heat.dispose();
      return explained;
    } finally {
      disposeResult(result);
    }
  } finally {
    input.tensor.dispose();
  }
}

/** `crp explain`: check everything, open the model, explain image by image, list what was written. */
export async function explain(argv: string[], json: boolean): Promise<ExplainedImage[]> {
  const args = parseExplainArgs(argv);
  await checkWritable('--out', args.out, 'folder');
  // a missing image among many fails before any other image's PNGs are written
  await checkReadable('image', args.images);
  // images of the same name from different folders (a/0.png, b/0.png) must not overwrite each other's PNGs
  const stems = outputStems(args.images);
  const { model, attribution: lrp } = await openAttribution(
    args.modelPath,
    args.input,
    args.composite,
    (m, composite) => new Attributor(m, { composite }),
  );
  const results: ExplainedImage[] = [];
  try {
    const target = args.targetSpec === 'pred' ? undefined : targetArg(args.targetSpec, lrp.graph, undefined);
    workStarts();
    await mkdir(args.out, { recursive: true });
    const progress = new ProgressBar('explain', args.images.length, process.stderr, json);
    for (const [i, path] of args.images.entries()) {
      results.push(await explainImage(args, lrp, path, stems[i]!, target));
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
