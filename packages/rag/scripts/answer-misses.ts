/**
 * `pnpm --filter @crp/rag exec tsx scripts/answer-misses.ts [--corpus DIR] [--index DIR] [--qa FILE ...]`
 *
 * Why an answer misses a supporting passage that WAS retrieved (passage choice, not retrieval): for every
 * question whose passage is inside one of the 5 sources but whose extractive answer does not cover it, it
 * prints the question's intent (as `questionIntent` reads it, and the author's `question_kind`), the answer's
 * sentences and the passage's sentences with their scores and the parts of the score (lexical share, novelty,
 * relation, source), so the cause can be read off: intent misread, a sentence that repeats the question's
 * words beating the one holding the relation, the window beside the passage, the second passage, a word form
 * the stemmer does not join, words that name the document. For the misses where no sentence was quoted from a
 * source holding the passage (`other-source` in `pnpm rag:eval`), it also says what made the quoted passage's
 * best sentence beat the passage's best one (the relation, more of the question's words, more novelty, an earlier
 * source, the language, the score ratio) and ends with a tally of those reasons. Default QA files: the tuning sets (`qa.json`,
 * `qa-extra.json`, `qa-natural.json`, `qa-heldout-2.json`); the held-out sets are measured only by
 * `pnpm rag:eval`, never read question by question.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  ANSWER_COVERAGE_THRESHOLD,
  answerCoverage,
  questionIntent,
  scoreSourceSentences,
} from '../src/node.js';
import { holdsPassage, openTuningEngine, readQuestions, TUNING_ARG_OPTIONS } from './tuning-engine.js';

const { values } = parseArgs({
  options: { ...TUNING_ARG_OPTIONS },
});
const { qaFiles, engine } = await openTuningEngine(values);

type Scored = Awaited<ReturnType<typeof scoreSourceSentences>>[number];
/**
 * Why the quoted passage's best sentence beat the passage's best sentence: one tag per difference in the parts of
 * the score (see `scoreSourceSentences`), the sources' order and language, and how far the passage was behind.
 */
function winsBy(
  winner: Scored,
  passage: Scored | undefined,
  sources: readonly { readonly n: number; readonly language: string }[],
  passages: number,
): string[] {
  if (!passage) return ['no scorable passage sentence (heading, code, a sentence split elsewhere)'];
  const tags: string[] = [];
  if (winner.relation && !passage.relation) tags.push('the relation (the passage lacks it)');
  if (!winner.relation && passage.relation) tags.push('despite the passage holding the relation');
  if (winner.lexical > passage.lexical + 0.05) tags.push("more of the question's words");
  if (passage.lexical > winner.lexical + 0.05) tags.push("despite fewer of the question's words");
  if (winner.novelty > passage.novelty + 0.1) tags.push('more novelty');
  tags.push(winner.source < passage.source ? 'an earlier source' : 'a later source');
  const language = (n: number) => sources.find((s) => s.n === n)?.language;
  if (language(winner.source) !== language(passage.source))
    tags.push(`language ${language(winner.source)} over ${language(passage.source)}`);
  const ratio = passage.score / Math.max(winner.score, 1e-9);
  tags.push(ratio >= 0.5 ? 'the passage at half the best or more' : 'the passage below half the best');
  tags.push(passages > 1 ? 'a second passage from another source' : 'one passage');
  return tags;
}
const index = engine.index;
const clean = (s: string) => s.replace(/[`*$]/g, '').replace(/\s+/g, ' ').trim();
let misses = 0;
let asked = 0;
// what made the quoted passage win over the passage's sentences, counted over the other-source misses
const why = new Map<string, number>();
let otherSource = 0;
for (const file of qaFiles) {
  for (const q of await readQuestions(file)) {
    asked++;
    const a = await engine.ask(q.question, { topK: 5, explain: false });
    const text = a.sentences.map((s) => s.text).join(' ');
    const coverage = answerCoverage(text, q.supporting_passage.text, index.translator);
    if (coverage >= ANSWER_COVERAGE_THRESHOLD) continue;
    const holding = a.sources.filter((s) => holdsPassage(q, s.file, s.text));
    if (holding.length === 0) continue;
    misses++;
    const intent = questionIntent(q.question);
    console.log(
      `\n${path.basename(file)} ${q.id} [intent ${intent.kind}${intent.subject.length ? ` (${intent.subject.join(' ')})` : ''}; author: ${q.question_kind ?? '-'}] coverage ${coverage.toFixed(2)}\n  Q: ${q.question}`,
    );
    console.log(
      `  passage (source ${holding.map((h) => h.n).join(',')}): ${clean(q.supporting_passage.text)}`,
    );
    // the scores, as the engine computes them, on the answer's own sources (numbered as `ask` numbers them)
    const qv = await index.embedQuery(q.question);
    const query = index.analyzeQuestion(q.question);
    const scored = await scoreSourceSentences(
      q.question,
      qv,
      query,
      a.sources,
      index.embedding,
      index.bm25,
      intent,
      index.translator,
    );
    const best = Math.max(...scored.map((s) => s.score));
    const head = clean(q.supporting_passage.text).slice(0, 40);
    const row = (s: (typeof scored)[number], mark: string) =>
      `  ${mark} [${s.source}.${s.index}] ${(s.score / best).toFixed(2)} lex=${s.lexical.toFixed(2)} nov=${s.novelty.toFixed(2)} rel=${s.relation ? 1 : 0} ${s.kind}: ${clean(s.text).slice(0, 150)}`;
    const quoted = new Set(
      a.sentences.map((s) => `${s.support?.source}|${clean(s.support?.sentence ?? '')}`),
    );
    const inPassage = (s: (typeof scored)[number]) =>
      holding.some((h) => h.n === s.source) &&
      clean(q.supporting_passage.text).includes(clean(s.text).slice(0, 60));
    const quotedSources = new Set(a.sentences.map((s) => s.citations[0]));
    const passageBest = scored
      .filter(inPassage)
      .reduce<(typeof scored)[number] | undefined>((x, y) => (!x || y.score > x.score ? y : x), undefined);
    const winner = scored
      .filter((s) => s.source === a.sentences[0]?.citations[0])
      .reduce<(typeof scored)[number] | undefined>((x, y) => (!x || y.score > x.score ? y : x), undefined);
    if (!holding.some((h) => quotedSources.has(h.n)) && winner) {
      otherSource++;
      const tags = winsBy(winner, passageBest, a.sources, quotedSources.size);
      for (const t of tags) why.set(t, (why.get(t) ?? 0) + 1);
      console.log(`  other-source: the quoted passage wins by ${tags.join(', ')}`);
    }
    for (const s of scored) {
      const inAnswer = quoted.has(`${s.source}|${clean(s.text)}`);
      const inPassage =
        holding.some((h) => h.n === s.source) &&
        clean(q.supporting_passage.text).includes(clean(s.text).slice(0, 60));
      const starts = clean(s.text).includes(head);
      if (inAnswer || inPassage || starts)
        console.log(row(s, `${inAnswer ? 'A' : ' '}${inPassage || starts ? 'P' : ' '}`));
    }
  }
}
console.log(`\n${asked} questions; ${misses} answers miss a retrieved passage`);
console.log(
  `${otherSource} of them quote no source holding the passage; the quoted passage won by: ${[...why]
    .sort((x, y) => y[1] - x[1])
    .map(([k, v]) => `${k} ${v}`)
    .join('; ')}`,
);
await engine.index.embedding.dispose?.();
