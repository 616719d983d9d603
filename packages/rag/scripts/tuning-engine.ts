/**
 * What the diagnosis scripts (`answer-misses`, `cross-lingual-misses`, `dense-ranks`, `retrieval-misses`) share:
 * their command-line options (`--corpus DIR`, `--index DIR`, `--qa FILE ...`), the evaluation corpus's engine,
 * opened on the USE-lite index `pnpm rag:eval` builds and brought up to date, the QA files' questions and the test
 * of whether a text holds a question's supporting passage. Their default QA files are the tuning sets; the
 * held-out sets are measured only by `pnpm rag:eval`.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { embeddingFromSpec, type Language, passageInTexts, RagEngine } from '../src/node.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** The QA files the answer and retrieval rules were developed on (never the `qa-heldout-3` and later sets). */
export const TUNING_SETS: readonly string[] = [
  'qa.json',
  'qa-extra.json',
  'qa-natural.json',
  'qa-heldout-2.json',
];

/** Where `pnpm rag:eval` keeps the evaluation corpus's USE-lite index. */
export const EVAL_INDEX_DIR = path.join(os.tmpdir(), 'crp-rag-eval-use-lite-static-512');

/** The `parseArgs` options every diagnosis script takes; spread them beside a script's own. */
export const TUNING_ARG_OPTIONS = {
  corpus: { type: 'string', default: path.join(repoRoot, 'vendor/rag-corpus') },
  index: { type: 'string' },
  qa: { type: 'string', multiple: true },
} as const;

/** Opens the evaluation corpus's engine (no generator) and resolves the QA files, the tuning sets by default. */
export async function openTuningEngine(values: { corpus?: string; index?: string; qa?: string[] }): Promise<{
  corpus: string;
  qaFiles: string[];
  engine: RagEngine;
}> {
  const corpus = path.resolve(values.corpus ?? TUNING_ARG_OPTIONS.corpus.default);
  const qaFiles = (values.qa ?? TUNING_SETS).map((f) => (path.isAbsolute(f) ? f : path.join(corpus, f)));
  const engine = await RagEngine.open({
    dir: path.resolve(values.index ?? EVAL_INDEX_DIR),
    embedding: embeddingFromSpec('use-lite'),
    generator: null,
  });
  await engine.update(path.join(corpus, 'docs'));
  return { corpus, qaFiles, engine };
}

/** A question of a QA file: the fields the diagnosis scripts read. */
export interface TuningQuestion {
  id: string;
  question: string;
  question_kind?: string;
  question_language: Language;
  answer_document_language: Language;
  supporting_passage: { file: string; text: string };
}

/** The questions of one QA file. */
export async function readQuestions(file: string): Promise<TuningQuestion[]> {
  return (JSON.parse(await readFile(file, 'utf8')) as { questions: TuningQuestion[] }).questions;
}

/** Whether `text`, from the corpus document `file` (a path below `docs/`), holds the question's whole passage. */
export function holdsPassage(q: TuningQuestion, file: string, text: string): boolean {
  return `docs/${file}` === q.supporting_passage.file && passageInTexts(q.supporting_passage.text, [text]);
}
