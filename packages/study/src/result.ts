import type { AtlasLayerComparison, ConceptAtlas, DecompositionAtlas, RegionAtlas } from '@crp/attribution';
import type { ProgressCallback } from '@crp/common';
import type { EpochLog, TrainLayers } from '@crp/models';
import type { ConceptPruningResult } from '@crp/pruning';
import type { RasterImage } from '@crp/vis';
import type * as tf from '@tensorflow/tfjs-core';
import type { StudyFaithfulness } from './faithfulness.js';
import type { ResolvedStudyOptions } from './options.js';
import type { StudyStore } from './store.js';

/** The study's record of the data it ran on. */
export interface StudyData {
  classes: string[];
  /** images per class, in class order */
  counts: number[];
  /** where the images came from (files of an image folder), when known */
  sources?: string[];
  /** files that could not be read and were skipped, with the reason */
  skipped: { path: string; reason: string }[];
}

/** Fine-tuning with LAMB: what happened. */
export interface StudyFineTune {
  epochs: number;
  learningRate: number;
  trainSamples: number;
  validationSamples: number;
  history: EpochLog[];
  /** the epoch whose weights were kept (the best validation loss, not the last) */
  bestEpoch: number | undefined;
  /** images per step (planned from the backend's memory unless given) */
  batchSize: number;
  /** the layers trained: `'all'` or names and dotted groups */
  trainLayers: TrainLayers;
}

/** Accuracy and confusion matrix. `confusionMatrix[true][predicted]`, class-index order. */
export interface StudyEvaluation {
  /** `'validation'`: the held-out split of the fine-tuning; `'all'`: every image (no fine-tuning) */
  on: 'validation' | 'all';
  samples: number;
  accuracy: number;
  loss: number;
  confusionMatrix: number[][];
  /** accuracy per class (NaN-free: null for a class without samples) */
  perClass: (number | null)[];
}

/** One concept's reference samples. */
export interface StudyReference {
  concept: number;
  /** the concept's row of the grid alone (its samples' opaque views, then heatmaps), labelled in the report */
  image: string;
  samples: {
    sample: number;
    source?: string;
    score: number;
    box: { x: number; y: number; width: number; height: number };
  }[];
}

/** Reference images of one layer: its top concepts, each with its most relevant samples. */
export interface StudyReferenceLayer {
  layer: string;
  /** the grid picture: one row per concept (opaque views, then heatmaps) */
  image: string;
  concepts: StudyReference[];
}

/** Concept pruning: the effect per class, and how much of the model was removed. */
export interface StudyPruning extends ConceptPruningResult {
  /** per layer: channels pruned per class out of the layer's channels, and the share of the model's weights;
   * `unit: 'head'` where the layer's concepts are attention heads (channels and pruned then count heads) */
  sparsity: { layer: string; channels: number; pruned: number; weightShare: number; unit?: 'head' }[];
}

/** Everything the study found, as plain JSON (what `study.json` holds and `report.html` shows). */
export interface StudyResult {
  format: 'crp-study/1';
  target: { index: number; name: string };
  options: ResolvedStudyOptions;
  model: {
    name: string;
    parameters: number;
    inputShape: (number | null)[];
    layers: string[];
    /** a transformer's concepts per layer (attention head, MLP neuron, d_model channel); absent for a CNN, whose
     * concepts are channels (conv) and units (dense) */
    concepts?: Record<string, 'attention head' | 'MLP neuron' | 'd_model channel' | 'channel'>;
  };
  data: StudyData;
  fineTune?: StudyFineTune;
  evaluation: StudyEvaluation;
  /** the samples of the target class the attribution strategies looked at: data-set indices and sources */
  samples: {
    indices: number[];
    sources?: string[];
    /** the model's logit of the target class on each of them: where it is negative, the relevance is mostly
     * negative and voting on it favours concepts without relevance (the report warns) */
    targetLogits: number[];
  };
  atlas: ConceptAtlas;
  regionAtlas: RegionAtlas;
  /** overlap of the global and the region atlas per layer (Jaccard of the top-k, rank correlation) */
  comparison: AtlasLayerComparison[];
  decomposition: DecompositionAtlas;
  references: StudyReferenceLayer[];
  pruning: StudyPruning;
  /** how faithful the explanations are (pixel flipping, MPRT, region mass, concept deletion) */
  faithfulness?: StudyFaithfulness;
  /** pictures of the report: LRP heatmaps of the first samples */
  heatmaps: { image: string; caption: string }[];
  /** seconds each part took when it was computed (a resumed part keeps its first time) */
  seconds: Record<string, number>;
  /** parts taken from an earlier run */
  resumed: string[];
}

/** What a study needs besides the model and the data. */
export interface StudyEnvironment {
  store: StudyStore;
  /** Identity of the model and data (e.g. file hashes): a stored part is reused only for the same one. */
  identity: string;
  /** Progress of every long step, with `phase` naming the step (`'fine-tune'`, `'atlas'`, ...). */
  onProgress?: ProgressCallback;
  /** One line per step (what is done, what is resumed). */
  log?: (line: string) => void;
  /** Turns one model input [H, W, C] into pixels (e.g. undoing the normalisation). Default min-max per image. */
  toImage?: (image: tf.Tensor3D) => RasterImage;
  /** The model's name in the report (e.g. its file name). */
  modelName?: string;
}
