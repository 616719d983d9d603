/**
 * `pnpm --filter @crp/rag exec tsx scripts/cross-lingual-misses.ts [--corpus DIR] [--index DIR] [--qa FILE ...]
 *  [--all-groups]`
 *
 * Why cross-lingual questions miss their supporting passage in retrieval: for every cross-lingual question
 * (question and supporting passage in different languages) whose passage is not in a top-5 chunk, it prints the
 * supporting chunk's fused, lexical and dense rank, and which question concepts the chunk holds (by which term)
 * and which content words of the passage no question concept reaches, then a tally of causes:
 * `dictionary` (a passage word is the translation of a question word but not among the question's terms),
 * `lexical` (the chunk ranks below 20 on BM25), `dense` (below 20 on the dense side), `fusion` (both sides
 * rank it within 20 and the fusion still puts it below 5), `split` (no single chunk holds the passage).
 * Default QA files: the tuning sets (`qa.json`, `qa-extra.json`, `qa-natural.json`, `qa-heldout-2.json`);
 * the held-out sets are measured only by `pnpm rag:eval`.
 */
import { parseArgs } from 'node:util';
import { chunkContextText, stemOfTerm, tokenize } from '../src/node.js';
import { holdsPassage, openTuningEngine, readQuestions, TUNING_ARG_OPTIONS } from './tuning-engine.js';

const { values } = parseArgs({
  options: { ...TUNING_ARG_OPTIONS, 'all-groups': { type: 'boolean', default: false } },
});
const { qaFiles, engine } = await openTuningEngine(values);
const index = engine.index;
const tr = index.translator;
const tally = new Map<string, number>();
const count = (k: string) => tally.set(k, (tally.get(k) ?? 0) + 1);
let asked = 0;
for (const file of qaFiles) {
  for (const q of await readQuestions(file)) {
    if (!values['all-groups'] && q.question_language === q.answer_document_language) continue;
    asked++;
    const hits = await index.search(q.question, { topK: index.chunks.length });
    const holds = (c: { text: string; metadata: { file: string } }) =>
      holdsPassage(q, c.metadata.file, c.text);
    const at = hits.findIndex((h) => holds(h.chunk));
    if (at >= 0 && at < 5) continue;
    const target = index.chunks.find(holds);
    console.log(`\n${q.id} [${q.question_language}->${q.answer_document_language}] ${q.question}`);
    if (!target) {
      console.log('  split: no single chunk holds the passage');
      count('split');
      continue;
    }
    const hit = hits[at];
    const analyzed = index.analyzeQuestion(q.question);
    const germanLexicon = tr?.lexicon('de');
    const chunkTerms = new Set(
      tokenize(
        chunkContextText(target),
        target.metadata.language,
        germanLexicon ? { germanLexicon } : {},
      ).map((t) => t.term),
    );
    console.log(
      `  fused rank ${at + 1}, lexical rank ${hit?.lexicalRank ?? '-'}, dense rank ${hit?.denseRank ?? '-'}; top 1: ${hits[0]!.chunk.metadata.file} (lexical ${hits[0]!.lexicalRank ?? '-'}, dense ${hits[0]!.denseRank ?? '-'})`,
    );
    const reached = new Set(analyzed.concepts.flatMap((c) => c.terms.map((t) => t.term)));
    for (const c of analyzed.concepts) {
      const m = c.terms.filter((t) => chunkTerms.has(t.term));
      console.log(
        `  ${c.word.padEnd(22)} ${m.length ? `chunk has ${m.map((t) => `${t.term}(${t.weight.toFixed(2)})`).join(' ')}` : '-'}   terms: ${c.terms
          .slice(0, 8)
          .map((t) => t.term)
          .join(' ')}`,
      );
    }
    const passageTerms = tokenize(
      q.supporting_passage.text,
      q.answer_document_language,
      germanLexicon ? { germanLexicon } : {},
    );
    const missed = [
      ...new Set(passageTerms.filter((t) => !t.extra && !reached.has(t.term)).map((t) => t.term)),
    ];
    console.log(`  passage words no concept reaches: ${missed.join(' ')}`);
    // a passage word whose translation is a question word's stem: the dictionary knows the pair, the query lost it
    const questionStems = new Set(tokenize(q.question, q.question_language).map((t) => stemOfTerm(t.term)));
    const lost = tr
      ? missed.filter((t) =>
          tr.translate(stemOfTerm(t), q.answer_document_language).some((x) => questionStems.has(x.term)),
        )
      : [];
    if (lost.length) console.log(`  translations of question words the query left out: ${lost.join(' ')}`);
    const causes = [
      ...(lost.length ? ['dictionary (translation dropped)'] : []),
      ...((hit?.lexicalRank ?? Infinity) > 20 ? ['lexical below 20'] : []),
      ...((hit?.denseRank ?? Infinity) > 20 ? ['dense below 20'] : []),
    ];
    if (causes.length === 0) causes.push('fusion (both sides within 20)');
    for (const c of causes) count(c);
    console.log(`  causes: ${causes.join(', ')}`);
  }
}
console.log(`\n${asked} questions asked; misses by cause (a question can have several):`);
for (const [k, n] of [...tally].sort((a, b) => b[1] - a[1])) console.log(`  ${k}: ${n}`);
await engine.index.embedding.dispose?.();
