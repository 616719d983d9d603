/**
 * `pnpm --filter @crp/rag exec tsx scripts/dense-ranks.ts [--corpus DIR] [--index DIR] [--qa FILE ...]`
 *
 * Where the dense side puts the supporting chunk: for every question of the QA files (default: the tuning sets
 * `qa.json`, `qa-extra.json`, `qa-natural.json`, `qa-heldout-2.json`), the supporting chunk's rank on the dense
 * side (by its lift over the corpus mean; a chunk below the mean counts as last) and in the fused ranking, by
 * group: English, German, English questions with German passages (en->de) and the reverse (de->en). Prints
 * per group the median dense rank, the share within the dense top 20, the median fused rank and the share of
 * passages in the top 5. The held-out sets are measured only by `pnpm rag:eval`.
 */
import { parseArgs } from 'node:util';
import { holdsPassage, openTuningEngine, readQuestions, TUNING_ARG_OPTIONS } from './tuning-engine.js';

const { values } = parseArgs({
  options: { ...TUNING_ARG_OPTIONS },
});
const { qaFiles, engine } = await openTuningEngine(values);
const index = engine.index;
const n = index.chunks.length;
const groups = new Map<string, { dense: number[]; fused: number[] }>();
for (const file of qaFiles) {
  for (const q of await readQuestions(file)) {
    const hits = await index.search(q.question, { topK: n });
    const at = hits.findIndex((h) => holdsPassage(q, h.chunk.metadata.file, h.chunk.text));
    if (at < 0) continue; // split by the chunker: no chunk to rank
    const key =
      q.question_language === q.answer_document_language
        ? q.question_language
        : `${q.question_language}->${q.answer_document_language}`;
    const g = groups.get(key) ?? { dense: [], fused: [] };
    g.dense.push(hits[at]!.denseRank ?? n);
    g.fused.push(at + 1);
    groups.set(key, g);
  }
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const share = (xs: number[], k: number) => xs.filter((x) => x <= k).length / xs.length;
console.log(`${n} chunks`);
for (const key of ['en', 'de', 'en->de', 'de->en']) {
  const g = groups.get(key);
  if (!g) continue;
  console.log(
    `${key.padEnd(7)} questions=${String(g.dense.length).padStart(3)} dense rank median=${String(median(g.dense)).padStart(5)} dense top-20=${share(g.dense, 20).toFixed(3)} fused rank median=${String(median(g.fused)).padStart(4)} passage top-5=${share(g.fused, 5).toFixed(3)} MRR@20=${(g.fused.reduce((a, r) => a + (r <= 20 ? 1 / r : 0), 0) / g.fused.length).toFixed(3)}`,
  );
}
await engine.index.embedding.dispose?.();
