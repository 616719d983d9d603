/**
 * `pnpm --filter @crp/rag exec tsx scripts/retrieval-misses.ts [--corpus DIR] [--index DIR] [--qa FILE ...]
 *  [--verbose] [--totals]`
 *
 * Every question (all language groups) whose supporting passage is in none of the 5 sources, tabulated by where
 * the passage's chunk sat (fused rank 6-20, 21-50, lower, split by the chunker), by language pair and by a cause
 * read from the scores:
 * `neighbour` (a chunk next to it in the same section is among the 5, without the whole passage),
 * `same-document` (another chunk of its document is among the 5: it lost to a chunk sharing the question's words),
 * `lexical-gap` (the chunk holds under half of the question's IDF weight: the passage says it in other words),
 * `reranked-down` (within the 5 before the passage and answer re-ranking), `fused` (the rest).
 * With `--verbose`, per question the chunk's lexical, dense and pre-re-ranking ranks and the question concepts it
 * lacks. Over every question (hit or miss), the `stage` tables say whether the passage's chunk is among the 5
 * after the fusion, after the passage re-ranking (`passageCoverage`) and after the answer re-ranking, so that a
 * change to one stage shows what it takes out and brings in. With `--totals`, only the tables are printed, no
 * question: for the held-out sets, whose questions are not read. Default QA files: the tuning sets.
 */
import { parseArgs } from 'node:util';
import { type Chunk, chunkContextText, tokenize } from '../src/node.js';
import { holdsPassage, openTuningEngine, readQuestions, TUNING_ARG_OPTIONS } from './tuning-engine.js';

const { values } = parseArgs({
  options: {
    ...TUNING_ARG_OPTIONS,
    verbose: { type: 'boolean', default: false },
    totals: { type: 'boolean', default: false },
  },
});
const { qaFiles, engine } = await openTuningEngine(values);
const index = engine.index;
const chunks = index.chunks;
const position = new Map(chunks.map((c, i) => [c, i]));
const germanLexicon = index.translator?.lexicon('de');
const tally = new Map<string, Map<string, number>>();
const count = (table: string, key: string) => {
  const t = tally.get(table) ?? new Map<string, number>();
  t.set(key, (t.get(key) ?? 0) + 1);
  tally.set(table, t);
};
let asked = 0;
for (const file of qaFiles) {
  for (const q of await readQuestions(file)) {
    asked++;
    const holds = (c: Chunk) => holdsPassage(q, c.metadata.file, c.text);
    const hits = await index.search(q.question, { topK: chunks.length });
    const at = hits.findIndex((h) => holds(h.chunk));
    const fusedAt = (
      await index.search(q.question, { topK: 50, hybrid: { rerank: 0, answerRerank: false } })
    ).findIndex((h) => holds(h.chunk));
    const coveredAt = (
      await index.search(q.question, { topK: 50, hybrid: { answerRerank: false } })
    ).findIndex((h) => holds(h.chunk));
    const among = (rank: number) => (rank >= 0 && rank < 5 ? 'in' : 'out');
    count('stage: fused -> passage re-ranking', `${among(fusedAt)} -> ${among(coveredAt)}`);
    count('stage: passage re-ranking -> answer re-ranking', `${among(coveredAt)} -> ${among(at)}`);
    if (at >= 0 && at < 5) continue;
    const pair = `${q.question_language}->${q.answer_document_language}`;
    const place = at < 0 ? 'split' : at < 20 ? 'rank 6-20' : at < 50 ? 'rank 21-50' : 'beyond 50';
    count('place', place);
    count('pair', pair);
    count('place x pair', `${place} ${pair}`);
    const top = hits.slice(0, 5);
    const docFile = q.supporting_passage.file.replace(/^docs\//, '');
    const sameDoc = top.filter((h) => h.chunk.metadata.file === docFile);
    if (at < 0) {
      count('cause', 'split');
      if (!values.totals) console.log(`${q.id} [${pair}] split | ${q.question}`);
      continue;
    }
    const target = hits[at]!;
    const t = position.get(target.chunk)!;
    const neighbour = sameDoc.some((h) => {
      const p = position.get(h.chunk)!;
      return Math.abs(p - t) === 1 && h.chunk.metadata.section === target.chunk.metadata.section;
    });
    const plain = await index.search(q.question, {
      topK: chunks.length,
      hybrid: { rerank: 0, answerRerank: false },
    });
    const before = plain.findIndex((h) => h.chunk === target.chunk);
    const analyzed = index.analyzeQuestion(q.question);
    const terms = new Set(
      tokenize(
        chunkContextText(target.chunk),
        target.chunk.metadata.language,
        germanLexicon ? { germanLexicon } : {},
      ).map((x) => x.term),
    );
    const weights = analyzed.concepts.map((c) => index.bm25.conceptIdf(c));
    const total = weights.reduce((s, w) => s + w, 0);
    const heldConcepts = analyzed.concepts.filter((c) => c.terms.some((x) => terms.has(x.term)));
    const held = analyzed.concepts.reduce(
      (s, c, k) => s + (c.terms.some((x) => terms.has(x.term)) ? weights[k]! : 0),
      0,
    );
    const share = total > 0 ? held / total : 0;
    const cause = neighbour
      ? 'neighbour'
      : share < 0.5
        ? 'lexical-gap'
        : before >= 0 && before < 5
          ? 'reranked-down'
          : sameDoc.length > 0
            ? 'same-document'
            : 'fused';
    count('cause', cause);
    count('cause x pair', `${cause} ${pair}`);
    count('right document among the 5', sameDoc.length > 0 ? 'yes' : 'no');
    if (values.totals) continue;
    console.log(
      `${q.id} [${pair}] fused ${at + 1} (before re-ranking ${before + 1}), lexical ${target.lexicalRank ?? '-'}, dense ${target.denseRank ?? '-'}, concept share ${share.toFixed(2)}, same document in top 5: ${sameDoc.length}; ${cause} | ${q.question}`,
    );
    if (values.verbose) {
      const lacking = analyzed.concepts.filter((c) => !heldConcepts.includes(c));
      console.log(
        `    lacks: ${lacking
          .map(
            (c) =>
              `${c.word}(${c.terms
                .slice(0, 5)
                .map((x) => x.term)
                .join(' ')})`,
          )
          .join('; ')}`,
      );
      console.log(`    chunk: ${target.chunk.text.replace(/\s+/g, ' ').slice(0, 300)}`);
      console.log(
        `    top 1: ${top[0]!.chunk.metadata.file} ${top[0]!.chunk.text.replace(/\s+/g, ' ').slice(0, 160)}`,
      );
    }
  }
}
console.log(`\n${asked} questions asked`);
for (const [table, t] of tally)
  console.log(
    `${table}: ${[...t]
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`,
  );
await index.embedding.dispose?.();
