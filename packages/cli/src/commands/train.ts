import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '@crp/common/node';
import {
  type Dataset,
  disposeDataset,
  type EpochLog,
  Lamb,
  smallVgg,
  type TrainResult,
  train as trainModel,
  VGG_CONFIGS,
  type VggName,
  type VggOptions,
  vgg,
  vggFromBlocks,
} from '@crp/models';
import { fileCheckpoints, fileSystem } from '@crp/models/node';
import type * as tfl from '@tensorflow/tfjs-layers';
import { inputSizeArg, intArg, numberArg, numberListArg, required } from '../args.js';
import { workStarts } from '../banner.js';
import { loadData } from '../data.js';
import { ProgressBar } from '../progress.js';
import { UsageError } from '../usage-error.js';

export const trainUsage = `crp train --data <image folder|mnist> --arch small-vgg|vgg11|vgg13|vgg16|vgg19 --out DIR [options]

Trains a VGG with LAMB (@crp/models), saves it (model.json + weights) and train.json into DIR, and prints the
validation accuracy and the confusion matrix.

  --data SPEC         'mnist' (the digits bundled with @crp/models) or a folder with one sub-folder per class
  --arch NAME         small-vgg (default), vgg11, vgg13, vgg16, vgg19
  --blocks W,W+W,...  instead of --arch: conv widths per block ('8,16+16' = [[8], [16, 16]])
  --hidden N,N        widths of the hidden dense layers ('' for none; default: the architecture's)
  --batch-norm        batch normalisation after every conv
  --input-size N|HxW  the model's input size; images are resized to it (default: 28 for mnist, the images'
                      own size for a folder)
  --channels 1|3      image channels (default 1 for mnist, 3 for a folder)
  --train N           training images (mnist: count, default 1000; folder: at most N per class)
  --validation N      validation images (mnist: count, default 200; folder: count or share, default 0.2)
  --epochs N          default 5
  --batch-size N      default 32
  --lr X              LAMB learning rate (default 0.01)
  --patience N        early stopping on the validation loss
  --seed N            seed of weights, split and shuffle (default 0)
  --checkpoints DIR   save a checkpoint per epoch there (a later run resumes)
  --out DIR           where the model and train.json go (required)`;

export interface TrainSummary {
  model: string;
  arch: string;
  inputShape: number[];
  classes: string[];
  trainImages: number;
  validationImages: number;
  epochs: number;
  history: EpochLog[];
  stoppedEarly: boolean;
  validation?: { loss: number; accuracy: number; confusionMatrix: number[][] };
}

function parseBlocks(value: string): number[][] {
  const blocks = value.split(',').map((b) => b.split('+').map(Number));
  if (blocks.length === 0 || blocks.some((b) => b.some((w) => !Number.isInteger(w) || w < 1))) {
    throw new UsageError(`--blocks must look like '8,16+16' (conv widths per block), got '${value}'`);
  }
  return blocks;
}

/** The command line of `crp train`; the model's and the training's numbers stay strings until they are used. */
interface TrainArgs {
  dataSpec: string;
  out: string;
  arch: string;
  blocks: string | undefined;
  hidden: string | undefined;
  batchNorm: boolean;
  inputShape: [number | null, number | null, number];
  /** --train, parsed when the data loads (after the backend line, as before the split) */
  trainImages: string | undefined;
  mnistData: boolean;
  validation: number;
  seed: number;
  epochs: string;
  batchSize: string;
  lr: string;
  patience: string | undefined;
  checkpoints: string | undefined;
}

/** Parses and checks the arguments the data needs; the others are checked where they are used. */
function parseTrainArgs(argv: string[]): TrainArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' },
      arch: { type: 'string' },
      blocks: { type: 'string' },
      hidden: { type: 'string' },
      'batch-norm': { type: 'boolean', default: false },
      'input-size': { type: 'string' },
      channels: { type: 'string' },
      train: { type: 'string' },
      validation: { type: 'string' },
      epochs: { type: 'string', default: '5' },
      'batch-size': { type: 'string', default: '32' },
      lr: { type: 'string', default: '0.01' },
      patience: { type: 'string' },
      seed: { type: 'string', default: '0' },
      checkpoints: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const dataSpec = required('data', values.data);
  const out = required('out', values.out);
  const arch = values.arch ?? (values.blocks === undefined ? 'small-vgg' : 'blocks');
  if (values.arch !== undefined && values.blocks !== undefined)
    throw new UsageError('give --arch or --blocks, not both');
  if (arch !== 'small-vgg' && arch !== 'blocks' && !(arch in VGG_CONFIGS)) {
    throw new UsageError(
      `unknown --arch '${arch}'; valid: small-vgg, ${Object.keys(VGG_CONFIGS).join(', ')}`,
    );
  }
  const mnistData = dataSpec === 'mnist';
  const size = inputSizeArg(values['input-size']);
  const [height, width] = typeof size === 'number' ? [size, size] : (size ?? [undefined, undefined]);
  const channels = intArg('channels', values.channels, 1) ?? (mnistData ? 1 : 3);
  if (channels !== 1 && channels !== 3) throw new UsageError(`--channels must be 1 or 3, got ${channels}`);
  const seed = intArg('seed', values.seed)!;
  const validation = numberArg('validation', values.validation) ?? (mnistData ? 200 : 0.2);
  return {
    dataSpec,
    out,
    arch,
    blocks: values.blocks,
    hidden: values.hidden,
    batchNorm: values['batch-norm']!,
    inputShape: [height ?? (mnistData ? 28 : null), width ?? (mnistData ? 28 : null), channels],
    trainImages: values.train,
    mnistData,
    validation,
    seed,
    epochs: values.epochs!,
    batchSize: values['batch-size']!,
    lr: values.lr!,
    patience: values.patience,
    checkpoints: values.checkpoints,
  };
}

/** The VGG of --arch (or --blocks) for the data's image shape and classes. */
function buildModel(args: TrainArgs, data: Dataset): tfl.Sequential {
  const [, h, w, c] = data.images.shape;
  const options: VggOptions = {
    inputShape: [h, w, c],
    classes: data.classes!.length, // mnist and image folders always name their classes
    batchNorm: args.batchNorm,
    seed: args.seed,
    ...(args.hidden === undefined ? {} : { hidden: numberListArg('hidden', args.hidden, true)! }),
    ...(args.arch === 'blocks' ? { dropout: 0 } : {}),
  };
  return args.arch === 'small-vgg'
    ? smallVgg(options)
    : args.arch === 'blocks'
      ? vggFromBlocks(parseBlocks(args.blocks!), { hidden: [], ...options })
      : vgg(args.arch as VggName, options);
}

/** Trains with LAMB, showing the loss per batch and the validation accuracy per epoch. */
async function fitModel(
  args: TrainArgs,
  model: tfl.Sequential,
  data: Dataset,
  holdOut: Dataset | undefined,
  json: boolean,
): Promise<TrainResult> {
  const epochs = intArg('epochs', args.epochs, 1)!;
  const batchSize = intArg('batch-size', args.batchSize, 1)!;
  const patience = intArg('patience', args.patience);
  const batches = Math.ceil(data.images.shape[0] / batchSize);
  const progress = new ProgressBar('train', epochs * batches, process.stderr, json);
  return trainModel(model, data, {
    epochs,
    batchSize,
    seed: args.seed,
    optimizer: new Lamb({ learningRate: numberArg('lr', args.lr)! }),
    ...(holdOut === undefined ? {} : { validation: holdOut }),
    ...(patience === undefined ? {} : { earlyStopping: { patience } }),
    ...(args.checkpoints === undefined ? {} : { checkpoints: fileCheckpoints(args.checkpoints) }),
    onProgress: (p) => {
      const note =
        p.phase === 'epoch'
          ? `epoch ${p.epoch}: loss ${p.loss.toFixed(3)}${p.valAccuracy === undefined ? '' : `, val acc ${p.valAccuracy.toFixed(3)}`}`
          : `loss ${p.loss.toFixed(3)}`;
      progress.update((p.epoch - 1) * batches + p.batch, note, p.etaMs);
    },
  });
}

/** What train.json holds: the model's file, architecture, data, history and validation. */
function summarize(
  args: TrainArgs,
  data: Dataset,
  holdOut: Dataset | undefined,
  result: TrainResult,
): TrainSummary {
  const [, h, w, c] = data.images.shape;
  return {
    model: join(args.out, 'model.json'),
    arch: args.arch === 'blocks' ? `blocks ${args.blocks}` : args.arch,
    inputShape: [h, w, c],
    classes: [...data.classes!],
    trainImages: data.images.shape[0],
    validationImages: holdOut?.images.shape[0] ?? 0,
    epochs: result.history.length,
    history: result.history,
    stoppedEarly: result.stoppedEarly,
    ...(result.validation === undefined
      ? {}
      : {
          validation: {
            loss: result.validation.loss,
            accuracy: result.validation.accuracy,
            confusionMatrix: result.validation.confusionMatrix,
          },
        }),
  };
}

function printSummary(summary: TrainSummary): void {
  console.log(`model saved to ${summary.model} (${summary.epochs} epochs on ${summary.trainImages} images)`);
  if (summary.validation === undefined) return;
  console.log(
    `validation accuracy ${summary.validation.accuracy.toFixed(4)} on ${summary.validationImages} images`,
  );
  console.log('confusion matrix (rows: true class, columns: predicted):');
  const width = Math.max(4, ...summary.classes.map((k) => k.length));
  console.log(`${''.padStart(width)} ${summary.classes.map((k) => k.padStart(width)).join(' ')}`);
  summary.validation.confusionMatrix.forEach((row, i) => {
    console.log(
      `${summary.classes[i]!.padStart(width)} ${row.map((v) => String(v).padStart(width)).join(' ')}`,
    );
  });
}

/** `crp train`: check the arguments, load the data, build and train the model, save it with train.json. */
export async function train(argv: string[], json: boolean): Promise<TrainSummary> {
  const args = parseTrainArgs(argv);
  workStarts();
  const { data, holdOut } = await loadData(args.dataSpec, {
    inputShape: args.inputShape,
    samples: intArg('train', args.trainImages, 1) ?? (args.mnistData ? 1000 : undefined),
    holdOut: args.validation,
    seed: args.seed,
  });
  let model: tfl.Sequential | undefined;
  try {
    model = buildModel(args, data);
    const result = await fitModel(args, model, data, holdOut, json);
    await mkdir(args.out, { recursive: true });
    await model.save(fileSystem(args.out));
    const summary = summarize(args, data, holdOut, result);
    await writeFileAtomic(join(args.out, 'train.json'), `${JSON.stringify(summary, null, 2)}\n`);
    if (!json) printSummary(summary);
    return summary;
  } finally {
    model?.dispose();
    disposeDataset(data);
    disposeDataset(holdOut);
  }
}
