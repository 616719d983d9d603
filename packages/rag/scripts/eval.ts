/**
 * `pnpm rag:eval [--corpus DIR] [--qa FILE ...] [--index DIR] [--embedding SPEC] [--top-k N] [--llm SPEC]
 *                [--fusion rrf|weighted] [--dense-weight W] [--no-dictionary] [--json FILE]`
 *
 * Indexes the corpus (incrementally, in a cache folder), asks every question of each QA file and prints, per
 * question set and for all together: hit@1 and hit@5 (a relevant file among the first 1 / 5 sources),
 * MRR@10, the share of questions whose reference passage is inside a retrieved chunk, and answer coverage
 * (the answer contains at least 50% of the supporting passage's content words), also per language group
 * (English, German, cross-lingual), and for questions with `key_terms` the key-term coverage (the answer
 * contains every expected key term). Default corpus: the vendored `vendor/rag-corpus` (or `CRP_RAG_CORPUS`);
 * default QA files: its `qa.json`, `qa-extra.json`, `qa-natural.json`, `qa-heldout-2.json`, `qa-heldout-3.json`, `qa-heldout-4.json`,
 * `qa-heldout-5.json`, `qa-heldout-6.json`, `qa-heldout-7.json`, `qa-heldout-8.json`, `qa-heldout-9.json`,
 * `qa-heldout-10.json`, `qa-heldout-11.json`, `qa-heldout-12.json`, `qa-heldout-13.json`, `qa-heldout-14.json`,
 * `qa-heldout-15.json`, `qa-heldout-16.json` and `qa-heldout-17.json` (each reported on its own and by language group).
 * Answers are extractive (offline) unless `--llm` names a model.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  ANSWER_COVERAGE_THRESHOLD,
  aggregateMetrics,
  answerCoverage,
  chunkSentences,
  embeddingFromSpec,
  firstRelevantRank,
  formatSummaryLine,
  generatorFromSpec,
  keyTermCoverage,
  type Language,
  passageInTexts,
  type QuestionGroup,
  type QuestionOutcome,
  questionGroup,
  questionIntent,
  type RagAnswer,
  RagEngine,
  type RetrievalMetrics,
} from '../src/node.js';

interface QaQuestion {
  id: string;
  question: string;
  relevant_files: string[];
  supporting_passage: { file: string; text: string; page?: number };
  question_language?: Language;
  answer_document_language?: Language;
  cross_lingual?: boolean;
  /** Words the answer should contain (qa-natural.json); scored by keyTermCoverage. */
  key_terms?: string[];
  /** What the question asks for, as its author saw it (definition, comparison, procedure, reason, list, number). */
  question_kind?: string;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../..');
const { values } = parseArgs({
  options: {
    corpus: {
      type: 'string',
      default: process.env.CRP_RAG_CORPUS ?? path.join(repoRoot, 'vendor/rag-corpus'),
    },
    qa: { type: 'string', multiple: true },
    index: { type: 'string' },
    embedding: { type: 'string', default: 'use-lite' },
    'top-k': { type: 'string', default: '5' },
    llm: { type: 'string', default: 'none' },
    fusion: { type: 'string' },
    'dense-weight': { type: 'string' },
    'no-dictionary': { type: 'boolean', default: false },
    json: { type: 'string' },
    verbose: { type: 'boolean', default: false },
  },
});
const corpus = path.resolve(values.corpus!);
const qaFiles =
  values.qa?.map((f) => path.resolve(f)) ??
  [
    'qa.json',
    'qa-extra.json',
    'qa-natural.json',
    'qa-heldout-2.json',
    'qa-heldout-3.json',
    'qa-heldout-4.json',
    'qa-heldout-5.json',
    'qa-heldout-6.json',
    'qa-heldout-7.json',
    'qa-heldout-8.json',
    'qa-heldout-9.json',
    'qa-heldout-10.json',
    'qa-heldout-11.json',
    'qa-heldout-12.json',
    'qa-heldout-13.json',
    'qa-heldout-14.json',
    'qa-heldout-15.json',
    'qa-heldout-16.json',
    'qa-heldout-17.json',
  ]
    .map((f) => path.join(corpus, f))
    .filter((f) => existsSync(f));
const topK = Number(values['top-k']);
const embedding = embeddingFromSpec(values.embedding!);
const hybrid = {
  ...(values.fusion ? { fusion: values.fusion as 'rrf' | 'weighted' } : {}),
  ...(values['dense-weight'] ? { denseWeight: Number(values['dense-weight']) } : {}),
};
const indexDir = path.resolve(
  values.index ?? path.join(os.tmpdir(), `crp-rag-eval-${embedding.id.replace(/[^\w.-]+/g, '_')}`),
);
// qa.json paths are relative to the corpus folder; its documents are in docs/ (README and LICENSES are not indexed)
const docsDir = existsSync(path.join(corpus, 'docs')) ? path.join(corpus, 'docs') : corpus;
const engine = await RagEngine.open({
  dir: indexDir,
  embedding,
  hybrid,
  generator: generatorFromSpec(values.llm!) ?? null,
  ...(values['no-dictionary'] ? { translator: null } : {}),
});
let last = '';
const report = await engine.update(docsDir, {
  onProgress: (p) => {
    const line = `${p.phase} ${p.done}/${p.total}`;
    if (process.stderr.isTTY && line !== last) process.stderr.write(`\r${line.padEnd(40)}`);
    last = line;
  },
});
if (process.stderr.isTTY) process.stderr.write(`\r${' '.repeat(41)}\r`);
console.log(
  `indexed ${docsDir}: ${report.chunkCount} chunks, ${report.pageCount} pages; embedded ${report.embeddedChunks} chunks with ${embedding.id} ` +
    `(${report.added.length} added, ${report.changed.length} changed, ${report.unchanged.length} unchanged, ${report.deleted.length} deleted) in ${report.seconds.toFixed(1)} s` +
    (report.embeddedChunks > 0 ? `, ${(report.embeddedChunks / report.seconds).toFixed(1)} chunks/s` : ''),
);
console.log(`cross-lingual dictionary: ${engine.index.translator ? engine.index.translator.source : 'none'}`);
for (const s of report.skipped) console.log(`skipped ${s.file}: ${s.message}`);

const indexedPrefix = path.relative(corpus, docsDir).split(path.sep).join('/');
const toQaPath = (file: string) => (indexedPrefix ? `${indexedPrefix}/${file}` : file);
/**
 * Where the supporting passage is for a question, to tell retrieval misses apart: `top-k` (inside a retrieved
 * chunk), `rank 6-20` / `rank 21-50` (inside a chunk ranked there), `beyond 50` (inside a chunk ranked lower),
 * `split` (no single chunk holds it: the chunker cut it apart).
 */
type PassageMiss = 'top-k' | 'rank 6-20' | 'rank 21-50' | 'beyond 50' | 'split';
const DIAGNOSE_DEPTH = 50;
function passageMiss(
  q: QaQuestion,
  hits: readonly { chunk: { text: string; metadata: { file: string } } }[],
  k: number,
): PassageMiss {
  const holds = (c: { text: string; metadata: { file: string } }) =>
    toQaPath(c.metadata.file) === q.supporting_passage.file &&
    passageInTexts(q.supporting_passage.text, [c.text]);
  const at = hits.findIndex((h) => holds(h.chunk));
  if (at >= 0) return at < k ? 'top-k' : at < 20 ? 'rank 6-20' : 'rank 21-50';
  return engine.index.chunks.some(holds) ? 'beyond 50' : 'split';
}
/**
 * Why an answer misses a passage that was retrieved: `other-source` (no answer sentence is quoted from a source
 * holding the passage), `window-near` (it is, but the passage starts within 3 sentences of the quoted stretch:
 * the window was placed or cut wrongly) or `window-far` (farther: another sentence of that chunk was chosen).
 * `covered` when the answer covers it, `not-retrieved` when no source holds it.
 */
type AnswerMiss = 'covered' | 'not-retrieved' | 'other-source' | 'window-near' | 'window-far';
function answerMiss(q: QaQuestion, a: RagAnswer, coverage: number): AnswerMiss {
  if (coverage >= ANSWER_COVERAGE_THRESHOLD) return 'covered';
  const holding = a.sources.filter(
    (s) =>
      toQaPath(s.file) === q.supporting_passage.file && passageInTexts(q.supporting_passage.text, [s.text]),
  );
  if (holding.length === 0) return 'not-retrieved';
  const quoted = a.sentences.filter((s) => holding.some((h) => h.n === s.support?.source));
  if (quoted.length === 0) return 'other-source';
  const source = holding.find((h) => h.n === quoted[0]!.support!.source)!;
  const sentences = chunkSentences(source);
  // the passage's first sentence: the one holding the passage's first words
  const head = q.supporting_passage.text.replace(/[`*$]/g, '').replace(/\s+/g, ' ').trim().slice(0, 30);
  const at = sentences.findIndex((s) => s.text.replace(/[`*$]/g, '').replace(/\s+/g, ' ').includes(head));
  const spans = quoted.map((s) => sentences.findIndex((x) => x.text.trim() === s.support!.sentence?.trim()));
  if (at < 0 || spans.some((i) => i < 0)) return 'window-far';
  const gap = Math.min(...spans.map((i) => Math.abs(i - at)));
  return gap <= 3 ? 'window-near' : 'window-far';
}
const categories = new Map<string, Map<AnswerMiss, number>>();
/** Questions whose author's kind (`question_kind`) differs from `questionIntent`'s, per set. */
const misread = new Map<string, { misread: number; of: number; misreadCovered: number }>();
const misses = new Map<string, Map<PassageMiss, number>>();
const sets: { name: string; outcomes: QuestionOutcome[]; groups: Map<QuestionGroup, QuestionOutcome[]> }[] =
  [];
const groups = new Map<QuestionGroup, QuestionOutcome[]>();
const latencies: number[] = [];
const details: unknown[] = [];
for (const qaFile of qaFiles) {
  const qa = JSON.parse(await readFile(qaFile, 'utf8')) as { questions: QaQuestion[] };
  const outcomes: QuestionOutcome[] = [];
  const setGroups = new Map<QuestionGroup, QuestionOutcome[]>();
  console.log(`\n# ${path.basename(qaFile)} (${qa.questions.length} questions)`);
  for (const q of qa.questions) {
    const t = performance.now();
    const hits = await engine.index.search(q.question, { topK: Math.max(DIAGNOSE_DEPTH, topK) });
    latencies.push(performance.now() - t);
    const files = hits.map((h) => toQaPath(h.chunk.metadata.file));
    const rank = firstRelevantRank(files, q.relevant_files);
    const top = hits.slice(0, topK);
    const found = passageInTexts(
      q.supporting_passage.text,
      top
        .filter((h) => toQaPath(h.chunk.metadata.file) === q.supporting_passage.file)
        .map((h) => h.chunk.text),
    );
    const miss = passageMiss(q, hits, topK);
    const a = await engine.ask(q.question, { topK, explain: false });
    const answerText = a.sentences.map((s) => s.text).join(' ');
    const coverage = answerCoverage(answerText, q.supporting_passage.text, engine.index.translator);
    const documentLanguage =
      q.answer_document_language ?? (q.supporting_passage.file.includes('/de-') ? 'de' : 'en');
    const keyTerms = q.key_terms
      ? keyTermCoverage(answerText, q.key_terms, {
          language: documentLanguage,
          translator: engine.index.translator,
        })
      : undefined;
    const outcome: QuestionOutcome = {
      id: q.id,
      passageFound: found,
      answerCoverage: coverage,
      ...(keyTerms !== undefined ? { keyTermCoverage: keyTerms } : {}),
      ...(rank !== undefined ? { firstRelevantRank: rank } : {}),
    };
    outcomes.push(outcome);
    const group = questionGroup(q.question_language ?? a.questionLanguage, documentLanguage);
    groups.set(group, [...(groups.get(group) ?? []), outcome]);
    setGroups.set(group, [...(setGroups.get(group) ?? []), outcome]);
    const category = answerMiss(q, a, coverage);
    const catKey = `${path.basename(qaFile)}|${group}`;
    const cats = categories.get(catKey) ?? new Map<AnswerMiss, number>();
    cats.set(category, (cats.get(category) ?? 0) + 1);
    categories.set(catKey, cats);
    const intentKind = questionIntent(q.question).kind;
    if (q.question_kind) {
      const m = misread.get(path.basename(qaFile)) ?? { misread: 0, of: 0, misreadCovered: 0 };
      m.of++;
      if (q.question_kind !== intentKind) {
        m.misread++;
        if (category === 'covered') m.misreadCovered++;
      }
      misread.set(path.basename(qaFile), m);
    }
    const tally = misses.get(`${path.basename(qaFile)}|${group}`) ?? new Map<PassageMiss, number>();
    tally.set(miss, (tally.get(miss) ?? 0) + 1);
    misses.set(`${path.basename(qaFile)}|${group}`, tally);
    details.push({
      set: path.basename(qaFile),
      id: q.id,
      question: q.question,
      rank,
      passageFound: found,
      passage: miss,
      coverage,
      category,
      kind: q.question_kind,
      intent: intentKind,
      keyTerms,
      sentences: a.sentences.length,
      answer: a.answer,
    });
    const mark = rank !== undefined && rank <= topK ? 'HIT ' : 'MISS';
    const where = top[0]
      ? `${top[0].chunk.metadata.file}${top[0].chunk.metadata.page ? ` p.${top[0].chunk.metadata.page}` : ''}`
      : '-';
    console.log(
      `${q.id} ${mark} rank=${rank ?? '-'} passage=${found ? 'yes' : 'no '} (${miss}) answer=${(coverage * 100).toFixed(0).padStart(3)}%${keyTerms !== undefined ? ` keys=${(keyTerms * 100).toFixed(0).padStart(3)}%` : ''} top1=${where} | ${q.question.slice(0, 70)}`,
    );
    if (values.verbose) console.log(`    -> ${a.answer.slice(0, 400)}`);
  }
  sets.push({ name: path.basename(qaFile), outcomes, groups: setGroups });
}
const line = (name: string, m: RetrievalMetrics) =>
  `${name.padEnd(18)} questions=${String(m.questions).padStart(3)} hit@1=${m.hitAt1.toFixed(3)} hit@5=${m.hitAt5.toFixed(3)} mrr@10=${m.mrrAt10.toFixed(3)} passage-found=${m.passageFound.toFixed(3)} answer-coverage=${m.answerCovered.toFixed(3)} (mean ${m.meanAnswerCoverage.toFixed(3)})` +
  (m.keyTermQuestions
    ? ` key-terms=${m.keyTermsCovered.toFixed(3)} (mean ${m.meanKeyTermCoverage.toFixed(3)}, ${m.keyTermQuestions} questions)`
    : '');
console.log('');
for (const s of sets) {
  console.log(line(s.name, aggregateMetrics(s.outcomes)));
  for (const g of ['en', 'de', 'cross-lingual'] as const) {
    const o = s.groups.get(g);
    if (o) console.log(line(`  ${g}`, aggregateMetrics(o)));
  }
}
const all = aggregateMetrics(sets.flatMap((s) => s.outcomes));
if (sets.length > 1) console.log(line('all', all));
console.log('');
for (const g of ['en', 'de', 'cross-lingual'] as const) {
  const o = groups.get(g);
  if (o) console.log(line(`all, ${g}`, aggregateMetrics(o)));
}
console.log(
  '\nwhere the supporting passage is (top-k: inside a retrieved chunk; split: in no single chunk):',
);
for (const [key, tally] of misses)
  console.log(
    `  ${key.padEnd(34)} ${[...tally]
      .sort()
      .map(([m, n]) => `${m}=${n}`)
      .join(' ')}`,
  );
console.log(
  '\nwhy answers miss (covered; not-retrieved; other-source: the passage was retrieved, another source quoted; window-near/far: its chunk quoted, the passage within 3 sentences of the quote or farther):',
);
const order: AnswerMiss[] = ['covered', 'not-retrieved', 'other-source', 'window-near', 'window-far'];
for (const [key, tally] of categories)
  console.log(`  ${key.padEnd(34)} ${order.map((c) => `${c}=${tally.get(c) ?? 0}`).join(' ')}`);
const total = new Map<AnswerMiss, number>();
for (const tally of categories.values()) for (const [c, n] of tally) total.set(c, (total.get(c) ?? 0) + n);
console.log(`  ${'all'.padEnd(34)} ${order.map((c) => `${c}=${total.get(c) ?? 0}`).join(' ')}`);
console.log('question kind read differently from the author (questionIntent vs question_kind):');
for (const [set, m] of misread)
  console.log(`  ${set.padEnd(34)} ${m.misread} of ${m.of} (covered anyway: ${m.misreadCovered})`);
latencies.sort((a, b) => a - b);
console.log(
  `search latency p50=${latencies[Math.floor(latencies.length / 2)]?.toFixed(1)} ms (question embedding included)`,
);
if (values.json)
  await writeFile(
    values.json,
    `${JSON.stringify(
      {
        sets: sets.map((s) => ({
          name: s.name,
          metrics: aggregateMetrics(s.outcomes),
          groups: [...s.groups].map(([name, o]) => ({ name, metrics: aggregateMetrics(o) })),
        })),
        groups: [...groups].map(([name, o]) => ({ name, metrics: aggregateMetrics(o) })),
        all,
        categories: Object.fromEntries([...categories].map(([k, t]) => [k, Object.fromEntries(t)])),
        details,
      },
      null,
      2,
    )}\n`,
  );
console.log(formatSummaryLine(all));
await embedding.dispose?.();
