import { isCrpError } from '@crp/common';
import { CondAttribution } from '@crp/core';
import {
  COMPOSITE_NAMES,
  type Composite,
  type CompositeName,
  compositeByName,
  compositeNameFor,
  graphFromLayersModel,
} from '@crp/lrp';
import type { Dataset } from '@crp/models';
import type * as tfl from '@tensorflow/tfjs-layers';
import { inputSizeArg, intArg, normalizationArgs } from './args.js';
import { loadData } from './data.js';
import { openModel } from './load-model.js';
import { UsageError } from './usage-error.js';

/** Options of every command that loads a model: the model, how images become its input, the LRP composite. */
export const modelOptions = {
  model: { type: 'string' },
  'input-size': { type: 'string' },
  heads: { type: 'string' },
  normalize: { type: 'string' },
  mean: { type: 'string' },
  std: { type: 'string' },
  // no default here: the model decides once it is loaded (modelComposite)
  composite: { type: 'string' },
} as const;

/** Options shared by the commands that explain a model over a data set. */
export const modelDataOptions = {
  ...modelOptions,
  data: { type: 'string' },
  samples: { type: 'string' },
  seed: { type: 'string', default: '0' },
} as const;

/** `--target`: the class, by name or index (see targetArg of checks.ts). */
export const targetOption = { target: { type: 'string' } } as const;

/** How images become model input, from the command line (the same for every command and every worker). */
export interface ModelInputOptions {
  /** input size of an imported PyTorch model */
  inputSize?: number | [number, number];
  /** attention heads of an imported ViT that is none of torchvision's configurations */
  numHeads?: number;
  mean?: number[];
  std?: number[];
}

/** `--input-size`, `--normalize` / `--mean` `--std` of {@link modelDataOptions}, checked. */
export function modelInputArgs(values: {
  'input-size'?: string | undefined;
  heads?: string | undefined;
  normalize?: string | undefined;
  mean?: string | undefined;
  std?: string | undefined;
}): ModelInputOptions {
  const inputSize = inputSizeArg(values['input-size']);
  const numHeads = intArg('heads', values.heads, 1);
  return {
    ...(inputSize === undefined ? {} : { inputSize }),
    ...(numHeads === undefined ? {} : { numHeads }),
    ...normalizationArgs(values),
  };
}

/** `--composite` as given (undefined: the model's default) and the input range EpsilonGammaBox needs. */
export interface CompositeChoice {
  name: string | undefined;
  bounds: { low: number; high: number };
}

/** `--composite`, checked before anything is loaded: an unknown name is a usage error that lists the valid ones. */
export function compositeArg(
  name: string | undefined,
  bounds: { low: number; high: number },
): CompositeChoice {
  if (name !== undefined && !(COMPOSITE_NAMES as readonly string[]).includes(name)) {
    throw new UsageError(
      `--composite: unknown composite '${name}'; valid names: ${COMPOSITE_NAMES.join(', ')}`,
    );
  }
  return { name, bounds };
}

/**
 * The composite for the loaded model, decided where the study decides it (`compositeNameFor` of @crp/lrp): the
 * one given, else attn_lrp for a transformer and epsilon_plus_flat otherwise. A CNN composite given for a
 * transformer is a usage error that lists the composites that fit.
 */
export function modelComposite(
  model: tfl.LayersModel,
  choice: CompositeChoice,
): { name: CompositeName; composite: Composite } {
  const graph = graphFromLayersModel(model);
  let name: CompositeName;
  try {
    name = compositeNameFor(graph, choice.name);
  } catch (err) {
    if (isCrpError(err, 'unsupported-composite')) throw new UsageError(`--composite: ${err.message}`);
    throw err;
  } finally {
    graph.dispose();
  }
  return { name, composite: compositeByName(name, choice.bounds) };
}

/**
 * Opens the model and builds what attributes over it (`make`: an Attributor or a CondAttribution) with the
 * composite decided for it (modelComposite); the model is disposed when that fails, else the caller owns both.
 */
export async function openAttribution<T>(
  modelPath: string,
  input: ModelInputOptions,
  choice: CompositeChoice,
  make: (model: tfl.LayersModel, composite: Composite) => T,
): Promise<{ model: tfl.LayersModel; attribution: T; compositeName: CompositeName }> {
  const model = await openModel(modelPath, input);
  try {
    const { name, composite } = modelComposite(model, choice);
    return { model, attribution: make(model, composite), compositeName: name };
  } catch (err) {
    model.dispose();
    throw err;
  }
}

/** The value range of images in [0, 1] after the normalisation (EpsilonGammaBox's bounds). */
export function inputRange(input: ModelInputOptions): { low: number; high: number } {
  if (input.mean === undefined || input.std === undefined) return { low: 0, high: 1 };
  const ends = input.mean.flatMap((m, i) => [(0 - m) / input.std![i]!, (1 - m) / input.std![i]!]);
  return { low: Math.min(...ends), high: Math.max(...ends) };
}

/** The help lines of the options that every command shares, worded once (a test holds every command to them). */
export const HELP = {
  model: `  --model PATH        a TF.js model (model.json or its folder), any CNN as .onnx (torch.onnx.export, tf2onnx),
                      or a torchvision VGG, ResNet or ViT saved by torch.save (.pth/.pt: state dict or whole
                      model) or as .safetensors (layers keep PyTorch's names)`,
  inputSize: `  --input-size N|HxW  input size of a PyTorch model (default 224) or of an .onnx whose input size is dynamic;
                      images are resized to the model's input`,
  heads: `  --heads N           attention heads of a .pth ViT that is none of torchvision's vit_b/l/h configurations`,
  normalize: `  --normalize imagenet  torchvision's ImageNet mean/std after scaling to [0, 1] (or --mean a,b,c --std a,b,c)`,
  composite: `  --composite NAME    LRP composite (default attn_lrp for a ViT, epsilon_plus_flat otherwise; a ViT takes
                      attn_lrp or cp_lrp)`,
  target: `  --target CLASS      the class: its name (a sub-folder of --data; mnist: the digit) or its index`,
  data: `  --data SPEC         'mnist' (bundled digits) or a folder with one sub-folder per class`,
  samples: `  --samples N         mnist: images to use (default 500); folder: at most N per class`,
  seed: `  --seed N            seed of the mnist sample (default 0)`,
} as const;

/** Help of {@link modelOptions}. */
export const modelHelp = [HELP.model, HELP.inputSize, HELP.heads, HELP.normalize, HELP.composite].join('\n');

/** Help of {@link modelDataOptions}. */
export const modelDataHelp = [modelHelp, HELP.data, HELP.samples, HELP.seed].join('\n');

/** Loads the model, a CondAttribution over it and the data in the model's input shape. */
export async function openModelAndData(
  modelPath: string,
  dataSpec: string,
  options: {
    /** --composite as given; undefined: the model's default */
    composite: string | undefined;
    samples?: number | undefined;
    seed?: number | undefined;
    holdOut?: number;
    input?: ModelInputOptions;
  },
): Promise<{
  model: tfl.LayersModel;
  crp: CondAttribution;
  /** the composite's name, decided for the model when none was given (what a job spec carries) */
  compositeName: CompositeName;
  data: Dataset;
  holdOut: Dataset | undefined;
}> {
  const input = options.input ?? {};
  const choice = compositeArg(options.composite, inputRange(input));
  const {
    model,
    attribution: crp,
    compositeName,
  } = await openAttribution(
    modelPath,
    input,
    choice,
    (m, composite) => new CondAttribution(m, { composite }),
  );
  try {
    const { data, holdOut } = await loadData(dataSpec, {
      inputShape: crp.attributor.graph.inputShape,
      samples: options.samples,
      seed: options.seed,
      ...(options.holdOut === undefined ? {} : { holdOut: options.holdOut }),
      ...(input.mean === undefined ? {} : { mean: input.mean, std: input.std! }),
    });
    return { model, crp, compositeName, data, holdOut };
  } catch (err) {
    crp.dispose();
    model.dispose();
    throw err;
  }
}
