import { type MaximizationTable, maximization } from '@crp/attribution';
import { CondAttribution } from '@crp/core';
import { DeviationLog, deviation, type GoldenTensor, goldenData } from '../compare.js';
import { discoverCaseFiles } from '../discover.js';
import { buildReferenceModel, readReferenceModel } from '../reference-model.js';
import type { CaseOutcome, CaseRef, KindRunner } from '../types.js';
import { crpAttributionOptions } from './crp.js';
import { tensorOf } from './lrp.js';

interface Ranking {
  topSampleIndices: number[][];
  topScores: number[][];
  topArgmaxPosition: number[][];
  topTied: boolean[][];
  allSortedSampleIndices: number[][];
  allSortedScores: number[][];
  perSampleChannelScores: GoldenTensor;
}

interface RelmaxCase {
  id: string;
  model: string;
  layer: string;
  composite: string;
  maxTarget: 'sum' | 'max';
  absNorm: boolean;
  dataset: GoldenTensor;
  datasetLabels: number[];
  relevanceMax: Ranking;
  activationMax: Ranking;
}

/** Compares one ranking: scores as tensors (tolerance), sample indices and argmax positions exactly where
 * the golden score is not tied (at a tie the order is arbitrary in the reference too). */
function compareRanking(name: string, ours: MaximizationTable, golden: Ranking, log: DeviationLog): void {
  const n = ours.samples;
  log.add(
    `${name}.perSampleChannelScores`,
    deviation(ours.scores!, goldenData(golden.perSampleChannelScores)),
  );
  const tolerance = 1e-4 * Math.max(...golden.allSortedScores.flat().map(Math.abs));
  golden.allSortedScores.forEach((scores, ch) => {
    const top = ours.top[ch]!;
    log.add(
      `${name}.allSortedScores[${ch}]`,
      deviation(
        top.map((t) => t.score),
        scores,
      ),
    );
    scores.forEach((s, rank) => {
      // a rank is determined when its score is apart from its neighbours by more than the tolerance
      const apart = (other: number | undefined) => other === undefined || Math.abs(other - s) > 2 * tolerance;
      if (!apart(scores[rank - 1]) || !apart(scores[rank + 1])) return;
      const want = golden.allSortedSampleIndices[ch]![rank];
      if (top[rank]?.sample !== want) {
        log.fail(`${name} channel ${ch} rank ${rank}: sample ${top[rank]?.sample}, reference ${want}`);
      }
    });
    golden.topArgmaxPosition[ch]!.forEach((pos, rank) => {
      if (golden.topTied[ch]![rank]) return;
      const sample = golden.topSampleIndices[ch]![rank];
      const mine = top.find((t) => t.sample === sample);
      if (mine === undefined || mine.argmaxPosition !== pos) {
        log.fail(
          `${name} channel ${ch} sample ${sample}: argmax position ${mine?.argmaxPosition}, reference ${pos}`,
        );
      }
    });
  });
  if (ours.top.length !== golden.allSortedScores.length || ours.top[0]!.length !== n) {
    log.fail(`${name}: ranked ${ours.top.length} channels x ${ours.top[0]?.length} samples`);
  }
}

async function runRelmaxCase(ref: CaseRef): Promise<CaseOutcome> {
  const c = (await ref.load()) as RelmaxCase;
  const model = buildReferenceModel(await readReferenceModel(ref.files, ref.dir, c.model));
  const crp = new CondAttribution(model, crpAttributionOptions(c.composite));
  const images = tensorOf(c.dataset);
  const log = new DeviationLog();
  try {
    const n = c.datasetLabels.length;
    const result = await maximization(
      crp,
      { images, labels: c.datasetLabels },
      {
        layers: [c.layer],
        maxTarget: c.maxTarget,
        absNorm: c.absNorm,
        topK: n,
        batchSize: 8,
        keepScores: true,
      },
    );
    compareRanking('relevanceMax', result.relevance[c.layer]!, c.relevanceMax, log);
    compareRanking('activationMax', result.activation[c.layer]!, c.activationMax, log);
  } finally {
    images.dispose();
    crp.dispose();
    model.dispose();
  }
  return log.outcome(c.id, 'relmax');
}

export const relmaxRunner: KindRunner = {
  kind: 'relmax',
  discover: (dir, files) => discoverCaseFiles(dir, files, 'relmax'),
  run: runRelmaxCase,
};
