import { CondAttribution, type Condition, disposeCondResult, HeadConcept } from '@crp/core';
import * as lrp from '@crp/lrp';
import { setVitWeights, type VitConfig, vit } from '@crp/models';
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
  input: GoldenTensor;
  targets: number[];
  logits: GoldenTensor;
  relevance: Record<string, GoldenTensor>;
  heatmap: GoldenTensor;
  /** A CRP condition: the relevance at `layer` masked to `index` along `axis` (-1: channels, 1: heads). */
  condition?: { layer: string; axis: number; index: number };
}

interface VitModelFile {
  format: string;
  config: VitConfig;
  weights: Record<string, GoldenTensor>;
}

const FORMAT = 'vit-golden/1';
/** The folder of the ViT cases inside a reference directory. */
const VIT_DIR = 'vit';

async function readVit(ref: CaseRef, name: string): Promise<tfl.LayersModel> {
  const file = joinPath(ref.dir, `${name}.json`);
  const m = (await readJson(ref.files, file, false)) as VitModelFile;
  if (m.format !== FORMAT) throw new Error(`${file}: format '${m.format}', expected '${FORMAT}'`);
  const model = vit(m.config);
  setVitWeights(model, m.config, (key) => {
    const w = m.weights[key];
    if (w === undefined) throw new Error(`${file} has no weight '${key}'`);
    return goldenData(w);
  });
  return model;
}

async function runVitCase(ref: CaseRef): Promise<CaseOutcome> {
  const c = (await ref.load()) as VitCase;
  if (c.format !== FORMAT) throw new Error(`case format '${c.format}', expected '${FORMAT}'`);
  const model = await readVit(ref, c.model);
  const input = tensorOf(c.input);
  const log = new DeviationLog();
  const options = { composite: c.composite, canonizers: [] };
  try {
    const recorded = Object.keys(c.relevance).filter((k) => k !== 'input');
    if (c.condition === undefined) {
      const attributor = new lrp.Attributor(model, options);
      try {
        const result = attributor.attribute(input, { target: c.targets, recordLayers: recorded });
        try {
          log.add('logits', deviation(await result.prediction.data(), goldenData(c.logits)));
          log.add('input', deviation(await result.relevance.data(), goldenData(c.relevance.input!)));
          for (const layer of recorded) {
            log.add(
              layer,
              deviation(await result.relevances[layer]!.data(), goldenData(c.relevance[layer]!)),
            );
          }
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
          for (const l of recorded) {
            log.add(l, deviation(await result.relevances[l]!.data(), goldenData(c.relevance[l]!)));
          }
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
