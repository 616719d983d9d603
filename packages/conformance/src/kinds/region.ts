import { regionRelevances } from '@crp/attribution';
import { CondAttribution } from '@crp/core';
import { DeviationLog, deviation, type GoldenTensor, goldenData } from '../compare.js';
import { discoverBundledCases } from '../discover.js';
import { buildReferenceModel, readReferenceModel } from '../reference-model.js';
import type { CaseOutcome, CaseRef, KindRunner } from '../types.js';
import { crpAttributionOptions } from './crp.js';
import { tensorOf } from './lrp.js';

/** One case of `region/region_golden.json` (format crp-golden-region/1). */
interface RegionCase {
  format: string;
  id: string;
  model: string;
  composite: string;
  classId: string | number;
  input: GoldenTensor;
  prediction: GoldenTensor;
  region: { spec: unknown; mask: GoldenTensor };
  layers: string[];
  total: GoldenTensor;
  regionRelevance: Record<string, GoldenTensor>;
}

const FORMAT = 'crp-golden-region/1';

/** The set's composite text names zennit-crp's README composite; the CRP cases spell it in Python. */
function compositePython(text: string): string {
  if (!/^EpsilonPlusFlat\b/.test(text)) throw new Error(`composite '${text}' has no counterpart`);
  return /SequentialMergeBatchNorm/.test(text)
    ? 'EpsilonPlusFlat(canonizers=[SequentialMergeBatchNorm()])'
    : 'EpsilonPlusFlat()';
}

async function runRegionCase(ref: CaseRef): Promise<CaseOutcome> {
  const c = (await ref.load()) as RegionCase;
  if (c.format !== FORMAT) throw new Error(`case format '${c.format}', expected '${FORMAT}'`);
  const model = buildReferenceModel(await readReferenceModel(ref.files, ref.dir, c.model));
  const crp = new CondAttribution(model, crpAttributionOptions(compositePython(c.composite)));
  const input = tensorOf(c.input);
  const log = new DeviationLog();
  try {
    const target = Number(c.classId);
    const mask = goldenData(c.region.mask);
    const results = regionRelevances(crp, input, { mask }, { target, layers: c.layers });
    const prediction = crp.attributor.forward(input);
    try {
      log.add('prediction', deviation(await prediction.prediction.data(), goldenData(c.prediction)));
    } finally {
      prediction.dispose();
    }
    log.add(
      'total',
      deviation(
        results.map((r) => r.total),
        goldenData(c.total),
      ),
    );
    for (const layer of c.layers) {
      const ours = results.flatMap((r) => r.layers[layer]!.relevance);
      log.add(`regionRelevance.${layer}`, deviation(ours, goldenData(c.regionRelevance[layer]!)));
    }
  } finally {
    input.dispose();
    crp.dispose();
    model.dispose();
  }
  return log.outcome(c.id, 'region');
}

/** Region relevance of every concept of the listed layers (crp-golden-region/1). */
export const regionRunner: KindRunner = {
  kind: 'region',
  discover: (dir, files) => discoverBundledCases(dir, files, 'region/region_golden.json', 'region'),
  run: runRegionCase,
};
