import { ChannelConcept, CondAttribution, type Condition, disposeCondResult } from '@crp/core';
import type * as lrp from '@crp/lrp';
import { DeviationLog, deviation, type GoldenTensor, goldenData } from '../compare.js';
import { discoverCaseFiles } from '../discover.js';
import { buildReferenceModel, readReferenceModel } from '../reference-model.js';
import type { CaseOutcome, CaseRef, KindRunner } from '../types.js';
import { compositeOf } from './case-helpers.js';
import { canonizersOf, tensorOf } from './lrp.js';

interface CrpCase {
  id: string;
  model: string;
  compositePython: string;
  conditions: Condition[];
  recordLayer: string[] | null;
  startLayer: string | null;
  input: GoldenTensor;
  heatmap: GoldenTensor;
  prediction: GoldenTensor;
  relevances: Record<string, GoldenTensor>;
  channelRelevance: { absNormTrue: Record<string, GoldenTensor>; absNormFalse: Record<string, GoldenTensor> };
}

/** `EpsilonPlusFlat(canonizers=[SequentialMergeBatchNorm()])` -> composite and canonizers. */
export function crpAttributionOptions(python: string): lrp.AttributorOptions {
  const composite = compositeOf(python);
  const canonizers = /SequentialMergeBatchNorm/.test(python)
    ? canonizersOf(['SequentialMergeBatchNorm'])
    : [];
  return { composite, canonizers };
}

async function runCrpCase(ref: CaseRef): Promise<CaseOutcome> {
  const c = (await ref.load()) as CrpCase;
  const model = buildReferenceModel(await readReferenceModel(ref.files, ref.dir, c.model));
  const crp = new CondAttribution(model, crpAttributionOptions(c.compositePython));
  const input = tensorOf(c.input);
  const log = new DeviationLog();
  const concept = new ChannelConcept();
  try {
    const record = c.recordLayer ?? [];
    const result = crp.run(input, c.conditions, {
      recordLayers: record,
      ...(c.startLayer ? { startLayer: c.startLayer } : {}),
    });
    try {
      log.add('heatmap', deviation(await result.heatmap!.data(), goldenData(c.heatmap)));
      log.add('prediction', deviation(await result.prediction.data(), goldenData(c.prediction)));
      for (const layer of record) {
        const ours = result.relevances[layer]!;
        log.add(
          `relevances.${layer}`,
          deviation(await ours.data(), goldenData(c.relevances[layer]!, c.relevances)),
        );
        for (const absNorm of [true, false]) {
          const golden = (absNorm ? c.channelRelevance.absNormTrue : c.channelRelevance.absNormFalse)[layer];
          if (golden === undefined) continue;
          const scores = concept.attribute(ours, { absNorm });
          log.add(
            `channelRelevance.absNorm${absNorm ? 'True' : 'False'}.${layer}`,
            deviation(await scores.data(), goldenData(golden)),
          );
          scores.dispose();
        }
      }
    } finally {
      disposeCondResult(result);
    }
  } finally {
    input.dispose();
    crp.dispose();
    model.dispose();
  }
  return log.outcome(c.id, 'crp');
}

export const crpRunner: KindRunner = {
  kind: 'crp',
  discover: (dir, files) => discoverCaseFiles(dir, files, 'crp'),
  run: runCrpCase,
};
