import { CondAttribution, type Condition, disposeCondResult, HeadConcept } from '@crp/core';
import * as lrp from '@crp/lrp';
import { type StateDict, torchVitFromStateDict, type VitConfig, vit } from '@crp/models';
import { setVitWeights } from '@crp/models/internal';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { DeviationLog, deviation, type GoldenTensor, goldenData } from '../compare.js';
import { discoverCaseFiles, readJson } from '../discover.js';
import { joinPath } from '../reference-files.js';
import type { CaseOutcome, CaseRef, KindRunner } from '../types.js';
import { tensorOf } from './lrp.js';

/** A case of `vit/` (format vit-golden/1): AttnLRP / CP-LRP on a small ViT, from LXT's explicit rules. */
interface VitCase {
  format: string;
  id: string;
  model: string;
  composite: 'attn_lrp' | 'cp_lrp';
  /** The image (NHWC); absent for models from a formula, whose image is the formula's. */
  input?: GoldenTensor;
  targets: number[];
  logits: GoldenTensor;
  /** Relevance at layer outputs (the small model). */
  relevance?: Record<string, GoldenTensor>;
  /** Relevance per token ([batch, tokens], summed over features) at layer outputs (the large model). */
  tokenRelevance?: Record<string, GoldenTensor>;
  heatmap: GoldenTensor;
  /** A CRP condition: the relevance at `layer` masked to `index` along `axis` (-1: channels, 1: heads). */
  condition?: { layer: string; axis: number; index: number };
}

interface VitModelFile {
  format: string;
  config: VitConfig;
  /** Weights in TF.js layouts (the small model), or none: the seeded formula (vit_b_16). */
  weights?: Record<string, GoldenTensor>;
  formula?: { name: string; input: { name: string; scale: number } };
}

/** FNV-1a (32 bit) of a string's UTF-8 bytes (parameter names are ASCII). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The seeded formula of scripts/golden/lxt_vit.py (`formula`), exact in 32-bit integers: element i is
 * offset + scale * (2 u - 1), u = lowbias32((fnv1a(name) + i * 0x9e3779b9) mod 2^32) / 2^32. */
function formulaValues(name: string, size: number, scale: number, offset: number): Float32Array {
  const seed = fnv1a(name);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    let x = (seed + Math.imul(i, 0x9e3779b9)) >>> 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d) >>> 0;
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b) >>> 0;
    x ^= x >>> 16;
    out[i] = offset + scale * (2 * ((x >>> 0) / 4294967296) - 1);
  }
  return out;
}

/** torchvision's state dict of a ViT whose every tensor comes from the formula (formula_weights in the script). */
function formulaStateDict(c: VitConfig): StateDict {
  const d = c.hiddenDim;
  const m = c.mlpDim;
  const p = c.patchSize;
  const side = (typeof c.imageSize === 'number' ? c.imageSize : c.imageSize[0]) / p;
  const shapes = new Map<string, number[]>([
    ['class_token', [1, 1, d]],
    ['conv_proj.weight', [d, 3, p, p]],
    ['conv_proj.bias', [d]],
    ['encoder.pos_embedding', [1, side * side + 1, d]],
  ]);
  for (let i = 0; i < c.numLayers; i++) {
    const b = `encoder.layers.encoder_layer_${i}.`;
    for (const [k, s] of [
      ['ln_1.weight', [d]],
      ['ln_1.bias', [d]],
      ['self_attention.in_proj_weight', [3 * d, d]],
      ['self_attention.in_proj_bias', [3 * d]],
      ['self_attention.out_proj.weight', [d, d]],
      ['self_attention.out_proj.bias', [d]],
      ['ln_2.weight', [d]],
      ['ln_2.bias', [d]],
      ['mlp.0.weight', [m, d]],
      ['mlp.0.bias', [m]],
      ['mlp.3.weight', [d, m]],
      ['mlp.3.bias', [d]],
    ] as const)
      shapes.set(b + k, [...s]);
  }
  const classes = c.numClasses ?? 1000;
  for (const [k, s] of [
    ['encoder.ln.weight', [d]],
    ['encoder.ln.bias', [d]],
    ['heads.head.weight', [classes, d]],
    ['heads.head.bias', [classes]],
  ] as const)
    shapes.set(k, [...s]);
  const values = (name: string): Float32Array => {
    const shape = shapes.get(name)!;
    const size = shape.reduce((a, b) => a * b, 1);
    if (/(ln_1|ln_2|encoder\.ln)\.weight$/.test(name)) return formulaValues(name, size, 0.1, 1);
    if (name.endsWith('bias')) return formulaValues(name, size, 0.05, 0);
    if (name === 'class_token' || name === 'encoder.pos_embedding') return formulaValues(name, size, 0.5, 0);
    const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
    return formulaValues(name, size, (name.includes('in_proj') ? 2 : 1) * Math.sqrt(3 / fanIn), 0);
  };
  const names = [...shapes.keys()];
  return {
    names,
    has: (n) => shapes.has(n),
    entry: (n) => ({ dtype: 'float32', shape: shapes.get(n)! }),
    float32: (n) => values(n),
  };
}

const FORMAT = 'vit-golden/1';
/** The folder of the ViT cases inside a reference directory. */
const VIT_DIR = 'vit';

async function readVit(ref: CaseRef, name: string): Promise<{ model: tfl.LayersModel; file: VitModelFile }> {
  const file = joinPath(ref.dir, `${name}.json`);
  const m = (await readJson(ref.files, file, false)) as VitModelFile;
  if (m.format !== FORMAT) throw new Error(`${file}: format '${m.format}', expected '${FORMAT}'`);
  if (m.formula !== undefined) return { model: torchVitFromStateDict(formulaStateDict(m.config)), file: m };
  const weights = m.weights;
  if (weights === undefined) throw new Error(`${file} has neither weights nor a formula`);
  const model = vit(m.config);
  setVitWeights(model, m.config, (key) => {
    const w = weights[key];
    if (w === undefined) throw new Error(`${file} has no weight '${key}'`);
    return goldenData(w);
  });
  return { model, file: m };
}

/** The image of a formula model: the formula of `input` over NHWC, row-major. */
function formulaImage(m: VitModelFile): tf.Tensor {
  const f = m.formula!;
  const side = typeof m.config.imageSize === 'number' ? m.config.imageSize : m.config.imageSize[0];
  return tf.tensor(formulaValues(f.input.name, side * side * 3, f.input.scale, 0), [1, side, side, 3]);
}

/** Relevance summed over the features of each token: [rows, tokens]. */
async function perToken(t: tf.Tensor): Promise<Float32Array> {
  const s = tf.sum(t, -1);
  const data = (await s.data()) as Float32Array;
  s.dispose();
  return data;
}

async function runVitCase(ref: CaseRef): Promise<CaseOutcome> {
  const c = (await ref.load()) as VitCase;
  if (c.format !== FORMAT) throw new Error(`case format '${c.format}', expected '${FORMAT}'`);
  const { model, file } = await readVit(ref, c.model);
  const input = c.input === undefined ? formulaImage(file) : tensorOf(c.input);
  const log = new DeviationLog();
  const options = { composite: c.composite, canonizers: [] };
  // the relevance compared at layers: whole tensors (small model) or per token (vit_b_16)
  const compareLayers = async (relevances: Record<string, tf.Tensor>) => {
    for (const layer of Object.keys(c.relevance ?? {}).filter((k) => k !== 'input'))
      log.add(layer, deviation(await relevances[layer]!.data(), goldenData(c.relevance![layer]!)));
    for (const [layer, golden] of Object.entries(c.tokenRelevance ?? {}))
      log.add(`${layer} per token`, deviation(await perToken(relevances[layer]!), goldenData(golden)));
  };
  try {
    const recorded = [
      ...Object.keys(c.relevance ?? {}).filter((k) => k !== 'input'),
      ...Object.keys(c.tokenRelevance ?? {}),
    ];
    if (c.condition === undefined) {
      const attributor = new lrp.Attributor(model, options);
      try {
        const result = attributor.attribute(input, { target: c.targets, recordLayers: recorded });
        try {
          log.add('logits', deviation(await result.prediction.data(), goldenData(c.logits)));
          if (c.relevance?.input !== undefined) {
            log.add('input', deviation(await result.relevance.data(), goldenData(c.relevance.input)));
          }
          const heatmap = tf.sum(result.relevance, -1);
          log.add('heatmap', deviation(await heatmap.data(), goldenData(c.heatmap)));
          heatmap.dispose();
          await compareLayers(result.relevances);
        } finally {
          lrp.disposeResult(result);
        }
      } finally {
        attributor.dispose();
      }
    } else {
      // one condition per image (paired), as zennit-crp runs a batch of conditions on a batch of images
      const { layer, axis, index } = c.condition;
      const conditions: Condition[] = c.targets.map((y) => ({ y: [y], [layer]: [index] }));
      const crp = new CondAttribution(model, options);
      try {
        const maskMap = axis === 1 ? { [layer]: new HeadConcept() } : {};
        const result = crp.run(input, conditions, { recordLayers: recorded, maskMap });
        try {
          log.add('prediction', deviation(await result.prediction.data(), goldenData(c.logits)));
          log.add('heatmap', deviation(await result.heatmap!.data(), goldenData(c.heatmap)));
          await compareLayers(result.relevances);
        } finally {
          disposeCondResult(result);
        }
      } finally {
        crp.dispose();
      }
    }
  } finally {
    input.dispose();
    model.dispose();
  }
  return { id: c.id, kind: 'vit', passed: log.worst <= 1, worst: log.worst, detail: log.summary() };
}

/** AttnLRP, CP-LRP and CRP (an MLP neuron, an attention head) on a small ViT, against LXT (vit/index.json). */
export const vitRunner: KindRunner = {
  kind: 'vit',
  discover: (dir, files) => discoverCaseFiles(joinPath(dir, VIT_DIR), files, 'vit'),
  run: runVitCase,
};
