import type { Region } from '@crp/attribution';
import { conceptLayers, transformerBlocks } from '@crp/attribution';
import { CrpError, listNames, nearestNames } from '@crp/common';
import { compositeNameFor, type GraphNode, type ModelGraph } from '@crp/lrp';

import type { TrainLayers } from '@crp/models';

/** What the concept study does; every field but `target` has the seed's default. */
export interface StudyOptions {
  /** The class whose concepts the study follows: its name (a sub-folder of the data) or its index. */
  target: string | number;
  /** Samples of the target class that the attribution strategies look at (the first in data order). Default 40. */
  samples?: number;
  /** The input region of the region-restricted atlas. Default: the centre square of a third of the input side
   * (a 100x100 centre would be `{ centerSquare: 100 }`, as the seed's study on 300 px patches). */
  region?: Region;
  /** Layers to analyse. Default every conv and dense layer below the output (PyTorch names for imported
   * models, e.g. `features.25`, `classifier.0`) and, in a CNN with branches, each stage's output: the last
   * addition of each run at one resolution and channel count, or the last concatenation at one resolution
   * (`layer1.1.add` ... `layer4.1.add` of a resnet18, the output of torchvision's `layer1` ... `layer4`; a
   * DenseNet's dense blocks), decomposed into both branches. */
  layers?: readonly string[];
  /** Concepts per layer reported and voted for by each sample. Default 5 (the seed's top-5). */
  topK?: number;
  /** LRP composite by name. Default `epsilon_plus_flat` (zennit-crp's README composite); `attn_lrp` (LXT's
   * AttnLRP) for a transformer (a model with products of two activations, e.g. a ViT of @crp/models), where a CNN
   * composite is refused (`compositeNameFor` of @crp/lrp). */
  composite?: string;
  /** Fine-tune the model with LAMB for this many epochs first (0: no fine-tuning). Default 0. */
  fineTune?: number;
  /** Share of the images held out for validation when fine-tuning (best epoch kept). Default 0.2. */
  validation?: number;
  /** LAMB learning rate of the fine-tuning. Default 1e-4. */
  learningRate?: number;
  /** Images per training step; default: planned from the model and the backend's memory. */
  trainBatchSize?: number;
  /**
   * Layers fine-tuned: `'all'` (default) or names and dotted groups, e.g. `['classifier']` for every
   * `classifier.N` of a torchvision VGG, `['layer4', 'fc']` for a ResNet's last stage and head; the layers before the first trained one run once, as at inference.
   */
  trainLayers?: TrainLayers;
  /** Layers to prune concepts in: default the first and the last conv layer (a low and a high layer); on a ViT
   * the MLP neurons of the first and the last block and the last block's heads (`self_attention.context`). */
  pruneLayers?: readonly string[];
  /** Concepts of each class pruned per layer. Default 3. */
  pruneConcepts?: number;
  /** Layers with reference images. Default the last conv layer and the first hidden dense layer. */
  referenceLayers?: readonly string[];
  /** Reference samples shown per concept. Default 6. */
  referenceSamples?: number;
  /** Images per forward/backward pass of the attribution strategies. Default 8. */
  batchSize?: number;
  /** Seed of the validation split and the training shuffle. Default 0. */
  seed?: number;
}

/** The study's options checked against the model and the data: everything explicit. */
export interface ResolvedStudyOptions {
  target: number;
  targetName: string;
  samples: number;
  region: Region;
  layers: string[];
  topK: number;
  composite: string;
  fineTune: number;
  validation: number;
  learningRate: number;
  trainBatchSize: number | undefined;
  trainLayers: TrainLayers;
  pruneLayers: string[];
  pruneConcepts: number;
  referenceLayers: string[];
  referenceSamples: number;
  batchSize: number;
  seed: number;
}

/** The form of `trainLayers`; which names the model has is checked against the model itself (selectTrainLayers). */
function checkTrainLayers(value: TrainLayers | undefined): TrainLayers {
  if (value === undefined || value === 'all') return 'all';
  if (!Array.isArray(value) || value.length === 0 || value.some((n) => typeof n !== 'string' || n === '')) {
    throw new CrpError(
      'invalid-argument',
      `trainLayers must be 'all' or a non-empty list of layer names (e.g. ['classifier']), got ${JSON.stringify(value)}`,
    );
  }
  return [...value];
}

function positiveInt(name: string, value: number | undefined, fallback: number, min = 1): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min) {
    throw new CrpError('invalid-argument', `${name} must be a whole number >= ${min}, got ${value}`);
  }
  return v;
}

/**
 * The class index of `target` among `classes`: a class name first (folder names such as "0", "1" name
 * themselves), else a whole number in range; otherwise a CrpError listing the classes. Where a class is named by
 * a number other than its index ("3", "7"), a number given as text that names none is refused rather than read as
 * an index: "1" would silently be the class named 7.
 */
export function resolveTarget(target: string | number, classes: readonly string[]): number {
  const byName = classes.indexOf(String(target));
  if (byName >= 0) return byName;
  const valid = () => classes.map((c, k) => `${k} (${c})`).join(', ');
  if (
    typeof target === 'string' &&
    /^\d+$/.test(target) &&
    classes.some((c, k) => /^\d+$/.test(c) && Number(c) !== k)
  ) {
    throw new CrpError(
      'invalid-target',
      `target '${target}' names no class; where classes are named by numbers a number is read as a name, not an ` +
        `index; valid: ${classes.join(', ')}`,
    );
  }
  const i = typeof target === 'number' ? target : /^\d+$/.test(target) ? Number(target) : Number.NaN;
  if (Number.isInteger(i) && i >= 0 && i < classes.length) return i;
  throw new CrpError('invalid-target', `target '${target}' is not a class; valid: ${valid()}`);
}

/** Graph kinds that join branches whose channels are concepts (a gated product is not one: its gate is no concept
 * of the feature map). */
const JOIN_KINDS: readonly string[] = ['add', 'concatenate'];

/**
 * Each stage's output of a CNN with branches: in graph order, the last join of each run of joins that one stage
 * makes. A join belongs to the run before it when it is of the run's resolution (height x width) and, when it
 * is an addition, of the channel count of the run's last addition: a residual stream keeps its width through a
 * stage, and the next stage starts with a block that changes the resolution or the channel count (torchvision's
 * `downsample`), also at the same resolution; such a run ends with its last addition. Concatenations are grouped
 * by resolution alone: a dense block's width grows with each one, and an Inception-ResNet block concatenates its
 * branches before its addition.
 * In a torchvision ResNet that is each stage's last block's addition (`layer1.1.add` ... `layer4.1.add`): the
 * output of `layer1` ... `layer4`, the modules a zennit-crp user names in `layer_names` (the ReLU after the sum
 * passes relevance unchanged), whose decomposition splits a concept into the last block's residual branch
 * (`conv2`, `conv3` in a bottleneck) and its shortcut (the previous block's addition, or the stage's
 * `downsample.0` in a stage of one block). In a DenseNet, each dense block's last concatenation. Only the stage
 * outputs, not every block's join: they are what each stage hands on, and cost a quarter of the additions (4 of a
 * resnet50's 16).
 */
function stageOutputs(graph: ModelGraph): string[] {
  const joins = graph.nodes.filter((n) => JOIN_KINDS.includes(n.kind) && n.id !== graph.outputId);
  const resolution = (n: GraphNode) => n.outputShape.slice(0, -1).join('x');
  const width = (n: GraphNode) => Number(n.outputShape.at(-1));
  const out: string[] = [];
  // the current run: its last join, and its last addition, whose width parts additions only (a concatenation
  // widens, and one inside a residual block, Inception-ResNet's branches, has another width than its addition)
  let last: GraphNode | undefined;
  let lastAdd: GraphNode | undefined;
  for (const n of joins) {
    if (last !== undefined && resolution(n) !== resolution(last)) {
      out.push(last.id);
      lastAdd = undefined;
    } else if (n.kind === 'add' && lastAdd !== undefined && width(n) !== width(lastAdd)) {
      // the stage ended with its last addition: the joins after it are the new stage's first block's
      out.push(lastAdd.id);
      lastAdd = undefined;
    }
    last = n;
    if (n.kind === 'add') lastAdd = n;
  }
  if (last !== undefined) out.push(last.id);
  return out;
}

/** The layers of the study: those given (checked against the graph) or the defaults of {@link StudyOptions}. */
function studyLayers(
  options: StudyOptions,
  graph: ModelGraph,
): Pick<ResolvedStudyOptions, 'layers' | 'pruneLayers' | 'referenceLayers'> {
  const all = conceptLayers(graph);
  // what a study decomposes: the conv and dense layers and the additions and concatenations, in graph order
  const valid = graph.nodes
    .filter((n) => all.includes(n.id) || (JOIN_KINDS.includes(n.kind) && n.id !== graph.outputId))
    .map((n) => n.id);
  const layerIds = (names: readonly string[] | undefined, what: string): string[] | undefined =>
    names?.map((n) => {
      if (!graph.has(n)) {
        throw new CrpError(
          'unknown-layer',
          `${what}: unknown layer '${n}' (nearest: ${nearestNames(n, graph.ids).join(', ')}); valid: ${listNames(valid)}`,
        );
      }
      return graph.node(n).id;
    });
  const layers = layerIds(options.layers, 'layers') ?? all;
  if (layers.length === 0)
    throw new CrpError('invalid-argument', 'the model has no conv or dense layer to study');
  const blocks = transformerBlocks(graph);
  if (blocks.length > 0) {
    // a ViT: MLP neurons are pruned (a zeroed unit of mlp.0 is GELU(0) = 0 for every token, so the neuron is
    // gone), in the first and the last block, and the last block's heads (masked through their v_proj columns);
    // references for the last block's MLP neurons and output dimensions
    const mlp = blocks.map((b) => b.mlpNeurons).filter((x): x is string => x !== undefined);
    const last = blocks.at(-1)!;
    return {
      layers,
      pruneLayers:
        layerIds(options.pruneLayers, 'pruneLayers') ??
        (mlp.length > 0 ? [...new Set([mlp[0]!, mlp.at(-1)!, last.heads])] : [layers[0]!, last.heads]),
      referenceLayers:
        layerIds(options.referenceLayers, 'referenceLayers') ??
        [last.mlpNeurons, last.output].filter((x): x is string => x !== undefined),
    };
  }
  const convs = all.filter(
    (id) => graph.node(id).kind === 'conv2d' || graph.node(id).kind === 'depthwiseConv2d',
  );
  const denses = all.filter((id) => graph.node(id).kind === 'dense');
  const pruneLayers = layerIds(options.pruneLayers, 'pruneLayers') ?? [
    ...new Set([convs[0] ?? all[0]!, convs.at(-1) ?? all.at(-1)!]),
  ];
  const referenceLayers = layerIds(options.referenceLayers, 'referenceLayers') ?? [
    ...new Set([convs.at(-1), denses[0]].filter((x): x is string => x !== undefined)),
  ];
  if (options.layers !== undefined) return { layers, pruneLayers, referenceLayers };
  // the defaults: the conv and dense layers and each stage's output, in graph order
  const chosen = new Set([...all, ...stageOutputs(graph)]);
  return {
    layers: graph.nodes.filter((n) => chosen.has(n.id)).map((n) => n.id),
    pruneLayers,
    referenceLayers,
  };
}

/** The model's outputs must be the data's classes. */
function checkOutputs(graph: ModelGraph, classes: readonly string[]): void {
  const outputs = graph.node(graph.outputId).outputShape.at(-1);
  if (typeof outputs === 'number' && outputs !== classes.length) {
    throw new CrpError(
      'invalid-argument',
      `the model has ${outputs} outputs but the data has ${classes.length} classes (${listNames([...classes])}); give a folder with one sub-folder per class the model was trained on`,
    );
  }
}

/**
 * Checks the options against the model graph and the class names; unknown layers, a target that is not a
 * class and out-of-range numbers are CrpErrors that say what is valid.
 */
export function resolveStudyOptions(
  options: StudyOptions,
  graph: ModelGraph,
  classes: readonly string[],
): ResolvedStudyOptions {
  const target = resolveTarget(options.target, classes);
  checkOutputs(graph, classes);
  const { layers, pruneLayers, referenceLayers } = studyLayers(options, graph);
  const [h, w] = [graph.inputShape[0], graph.inputShape[1]];
  const side =
    typeof h === 'number' && typeof w === 'number' ? Math.max(1, Math.round(Math.min(h, w) / 3)) : 1;
  const validation = options.validation ?? 0.2;
  if (!(validation > 0 && validation < 1)) {
    throw new CrpError('invalid-argument', `validation must be a share in (0, 1), got ${validation}`);
  }
  const learningRate = options.learningRate ?? 1e-4;
  if (!(learningRate > 0) || !Number.isFinite(learningRate)) {
    throw new CrpError('invalid-argument', `learningRate must be a positive number, got ${learningRate}`);
  }
  return {
    target,
    targetName: classes[target]!,
    samples: positiveInt('samples', options.samples, 40),
    region: options.region ?? { centerSquare: side },
    layers,
    topK: positiveInt('topK', options.topK, 5),
    composite: compositeNameFor(graph, options.composite),
    fineTune: positiveInt('fineTune', options.fineTune, 0, 0),
    validation,
    learningRate,
    trainBatchSize:
      options.trainBatchSize === undefined
        ? undefined
        : positiveInt('trainBatchSize', options.trainBatchSize, 1),
    trainLayers: checkTrainLayers(options.trainLayers),
    pruneLayers,
    pruneConcepts: positiveInt('pruneConcepts', options.pruneConcepts, 3),
    referenceLayers,
    referenceSamples: positiveInt('referenceSamples', options.referenceSamples, 6),
    batchSize: positiveInt('batchSize', options.batchSize, 8),
    seed: positiveInt('seed', options.seed, 0, 0),
  };
}

/** What a concept is at a layer of a transformer (see {@link transformerConceptKinds}). */
export type TransformerConceptKind = 'attention head' | 'MLP neuron' | 'd_model channel' | 'channel';

/**
 * What a concept is at each of `layers` of a transformer: an attention head at an attention product
 * (`self_attention.context`), an MLP neuron at a block's first MLP layer (`mlp.0`), a d_model channel at the MLP's
 * output and the block's output (`mlp.3`, `add_2`), a channel elsewhere; neurons and channels are summed over the
 * tokens. Undefined for a model without attention, whose concepts are channels (conv) and units (dense).
 */
export function transformerConceptKinds(
  graph: ModelGraph,
  layers: readonly string[],
): Record<string, TransformerConceptKind> | undefined {
  const blocks = transformerBlocks(graph);
  if (blocks.length === 0) return undefined;
  const kindOf = (id: string): TransformerConceptKind => {
    for (const b of blocks) {
      if (id === b.heads) return 'attention head';
      if (id === b.mlpNeurons) return 'MLP neuron';
      if (id === b.mlpOutput || id === b.output) return 'd_model channel';
    }
    return 'channel';
  };
  return Object.fromEntries(layers.map((l) => [l, kindOf(graph.node(l).id)]));
}
