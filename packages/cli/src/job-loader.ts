import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fromTensors, type ShardContext } from '@crp/attribution';
import { fileIdentity } from '@crp/common/node';
import type { CondAttribution } from '@crp/core';
import type { CompositeName } from '@crp/lrp';
import { type Dataset, disposeDataset } from '@crp/models';
import type * as tfl from '@tensorflow/tfjs-layers';
import { intArg } from './args.js';
import { type ModelInputOptions, modelInputArgs, openModelAndData } from './model-data.js';
import { type Distribution, parseDistribution } from './queue-options.js';

/**
 * A job's model and data set as the command line names them: what `crp worker` loads for each job. Paths are
 * absolute (every worker must see them at the same place: a shared file system or a mounted object store).
 */
export interface CliJobSpec {
  model: string;
  /** 'mnist' or an image folder */
  data: string;
  samples?: number;
  seed?: number;
  /** images held out (crp prune's --test): the job's samples are the rest */
  holdOut?: number;
  composite: string;
  /** input size of an imported PyTorch model and the images' normalisation */
  input?: ModelInputOptions;
}

/** The spec of a command's --model/--data options (paths made absolute). */
export function cliJobSpec(
  model: string,
  data: string,
  options: Omit<CliJobSpec, 'model' | 'data'>,
): CliJobSpec {
  return { model: resolve(model), data: data === 'mnist' ? data : resolve(data), ...options };
}

/** What a command over a data set reads alike from modelDataOptions and distributionOptions (besides --model
 * and --data): where it runs, the model's input, the composite as given, the samples and the seed. */
export interface DatasetRunArgs {
  dist: Distribution;
  input: ModelInputOptions;
  /** --composite as given, then the name decided for the loaded model (what a job spec carries) */
  compositeName: string | undefined;
  samples: number | undefined;
  seed: number;
}

/** {@link DatasetRunArgs} from parsed options, checked in this order: the distribution, the input, --samples, --seed. */
export function datasetRunArgs(
  values: Parameters<typeof parseDistribution>[0] &
    Parameters<typeof modelInputArgs>[0] & {
      composite?: string | undefined;
      samples?: string | undefined;
      seed?: string | undefined;
    },
): DatasetRunArgs {
  const dist = parseDistribution(values);
  const input = modelInputArgs(values);
  const samples = intArg('samples', values.samples, 1);
  const seed = intArg('seed', values.seed)!;
  return { dist, input, compositeName: values.composite, samples, seed };
}

/** The job spec of a command run beyond this process: its model, data, input, decided composite, samples, seed. */
export function datasetJobSpec(
  args: DatasetRunArgs & { modelPath: string; dataSpec: string; compositeName: string },
): CliJobSpec {
  return cliJobSpec(args.modelPath, args.dataSpec, {
    input: args.input,
    composite: args.compositeName,
    ...(args.samples === undefined ? {} : { samples: args.samples }),
    seed: args.seed,
  });
}

/**
 * Opens a command's model and data (openModelAndData), runs `body` on them with the arguments now carrying the
 * composite decided for the model, and disposes the model, the CondAttribution and the data however it ends.
 */
export async function withDatasetRun<A extends DatasetRunArgs & { modelPath: string; dataSpec: string }, R>(
  given: A,
  body: (
    args: A & { compositeName: CompositeName },
    opened: { model: tfl.LayersModel; crp: CondAttribution; data: Dataset },
  ) => Promise<R>,
): Promise<R> {
  const { model, crp, compositeName, data } = await openModelAndData(given.modelPath, given.dataSpec, {
    input: given.input,
    composite: given.compositeName,
    samples: given.samples,
    seed: given.seed,
  });
  try {
    return await body({ ...given, compositeName }, { model, crp, data });
  } finally {
    crp.dispose();
    model.dispose();
    disposeDataset(data);
  }
}

const datasets = new WeakMap<object, Dataset>();

/** Loads a spec exactly as the commands do (openModelAndData: model, CondAttribution, data in the model's
 * input shape). */
export async function loadCliJob(spec: CliJobSpec): Promise<ShardContext> {
  const { model, crp, data, holdOut } = await openModelAndData(spec.model, spec.data, {
    composite: spec.composite,
    samples: spec.samples,
    seed: spec.seed,
    ...(spec.holdOut === undefined ? {} : { holdOut: spec.holdOut }),
    ...(spec.input === undefined ? {} : { input: spec.input }),
  });
  disposeDataset(holdOut);
  datasets.set(crp, data);
  return { crp, model, dataset: fromTensors(data) };
}

export function disposeCliJob(ctx: ShardContext): void {
  disposeDataset(datasets.get(ctx.crp));
  ctx.crp.dispose();
  ctx.model?.dispose();
}

/**
 * Identity of the model (size and SHA-256 of every file of its folder: model.json and its weights, or the
 * .safetensors file) and of the data set (its labels and sample order, and for a folder every image's path
 * and size; 'mnist' is bundled and versioned with the toolkit). Copies on several machines agree; a model
 * retrained at the same path does not.
 */
export async function identifyCliJob(
  spec: CliJobSpec,
  ctx: ShardContext,
): Promise<{ model: string; data: string }> {
  const modelPath =
    spec.model.endsWith('.safetensors') || !statSync(spec.model).isFile() ? spec.model : dirname(spec.model);
  const data = createHash('sha256');
  data.update(JSON.stringify({ spec: { ...spec, model: undefined }, labels: ctx.dataset.labels }));
  const images = spec.data === 'mnist' ? 'bundled mnist' : await fileIdentity(spec.data, { content: false });
  return {
    model: await fileIdentity(modelPath),
    data: `${ctx.dataset.size} samples, options and labels sha256:${data.digest('hex').slice(0, 32)}; ${images}`,
  };
}

/** The CLI's loader for @crp/queue (coordinator and `crp worker`). */
export const cliJobLoader = { load: loadCliJob, identify: identifyCliJob, dispose: disposeCliJob };
