import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '@crp/common/node';
import {
  disposeDataset,
  type EpochLog,
  Lamb,
  smallVgg,
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

export async function train(argv: string[], json: boolean): Promise<TrainSummary> {
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
  const validationCount = numberArg('validation', values.validation) ?? (mnistData ? 200 : 0.2);
  workStarts();
  const { data, holdOut } = await loadData(dataSpec, {
    inputShape: [height ?? (mnistData ? 28 : null), width ?? (mnistData ? 28 : null), channels],
    samples: intArg('train', values.train, 1) ?? (mnistData ? 1000 : undefined),
    holdOut: validationCount,
    seed,
  });
  let model: tfl.Sequential | undefined;
  try {
    const [, h, w, c] = data.images.shape;
    const options: VggOptions = {
      inputShape: [h, w, c],
      classes: data.classes!.length, // mnist and image folders always name their classes
      batchNorm: values['batch-norm']!,
      seed,
      ...(values.hidden === undefined ? {} : { hidden: numberListArg('hidden', values.hidden, true)! }),
      ...(arch === 'blocks' ? { dropout: 0 } : {}),
    };
    model =
      arch === 'small-vgg'
        ? smallVgg(options)
        : arch === 'blocks'
          ? vggFromBlocks(parseBlocks(values.blocks!), { hidden: [], ...options })
          : vgg(arch as VggName, options);
    const epochs = intArg('epochs', values.epochs, 1)!;
    const batchSize = intArg('batch-size', values['batch-size'], 1)!;
    const patience = intArg('patience', values.patience);
    const batches = Math.ceil(data.images.shape[0] / batchSize);
    const progress = new ProgressBar('train', epochs * batches, process.stderr, json);
    const result = await trainModel(model, data, {
      epochs,
      batchSize,
      seed,
      optimizer: new Lamb({ learningRate: numberArg('lr', values.lr)! }),
      ...(holdOut === undefined ? {} : { validation: holdOut }),
      ...(patience === undefined ? {} : { earlyStopping: { patience } }),
      ...(values.checkpoints === undefined ? {} : { checkpoints: fileCheckpoints(values.checkpoints) }),
      onProgress: (p) => {
        const note =
          p.phase === 'epoch'
            ? `epoch ${p.epoch}: loss ${p.loss.toFixed(3)}${p.valAccuracy === undefined ? '' : `, val acc ${p.valAccuracy.toFixed(3)}`}`
            : `loss ${p.loss.toFixed(3)}`;
        progress.update((p.epoch - 1) * batches + p.batch, note, p.etaMs);
      },
    });
    await mkdir(out, { recursive: true });
    await model.save(fileSystem(out));
    const summary: TrainSummary = {
      model: join(out, 'model.json'),
      arch: arch === 'blocks' ? `blocks ${values.blocks}` : arch,
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
    await writeFileAtomic(join(out, 'train.json'), `${JSON.stringify(summary, null, 2)}\n`);
    if (!json) {
      console.log(
        `model saved to ${summary.model} (${summary.epochs} epochs on ${summary.trainImages} images)`,
      );
      if (summary.validation !== undefined) {
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
    }
    return summary;
  } finally {
    model?.dispose();
    disposeDataset(data);
    disposeDataset(holdOut);
  }
}
