/**
 * `pnpm rag:eval [--corpus DIR] [--qa FILE] [--index DIR] [--embedding use-lite|hash] [--top-k N]`
 * Indexes the corpus (incrementally, in a cache folder), asks every question and prints retrieval quality.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  aggregateMetrics,
  type EmbeddingProvider,
  firstRelevantRank,
  formatSummaryLine,
  HashEmbedding,
  passageInTexts,
  type QuestionOutcome,
  RagIndex,
  UseLiteEmbedding,
} from '../src/index.js';

interface QaFile {
  questions: {
    id: string;
    question: string;
    relevant_files: string[];
    supporting_passage: { file: string; text: string; page?: number };
  }[];
}

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../..');
const { values } = parseArgs({
  options: {
    corpus: { type: 'string', default: path.resolve(repoRoot, '../shared/rag-corpus') },
    qa: { type: 'string' },
    index: { type: 'string', default: path.join(os.tmpdir(), 'crp-rag-eval-index') },
    embedding: { type: 'string', default: 'use-lite' },
    'top-k': { type: 'string', default: '5' },
    fusion: { type: 'string' },
    'dense-weight': { type: 'string' },
  },
});
const corpus = path.resolve(values.corpus!);
const qaPath = path.resolve(values.qa ?? path.join(corpus, 'qa.json'));
const topK = Number(values['top-k']);
const embedding: EmbeddingProvider =
  values.embedding === 'hash' ? new HashEmbedding() : new UseLiteEmbedding();
const hybrid = {
  ...(values.fusion ? { fusion: values.fusion as 'rrf' | 'weighted' } : {}),
  ...(values['dense-weight'] ? { denseWeight: Number(values['dense-weight']) } : {}),
};

const qa = JSON.parse(await readFile(qaPath, 'utf8')) as QaFile;
// qa.json paths are relative to the corpus folder; its documents are in docs/ (README and LICENSES are not indexed).
const docsDir = existsSync(path.join(corpus, 'docs')) ? path.join(corpus, 'docs') : corpus;
const index = await RagIndex.open({ dir: path.resolve(values.index!), embedding, hybrid });
let last = '';
const report = await index.update(docsDir, {
  onProgress: (p) => {
    const line = `${p.phase} ${p.done}/${p.total}`;
    if (process.stderr.isTTY && line !== last) process.stderr.write(`\r${line.padEnd(40)}`);
    last = line;
  },
});
if (process.stderr.isTTY) process.stderr.write(`\r${' '.repeat(41)}\r`);
console.log(
  `indexed ${docsDir}: ${report.chunkCount} chunks, ${report.pageCount} pages; embedded ${report.embeddedChunks} chunks ` +
    `(${report.added.length} added, ${report.changed.length} changed, ${report.unchanged.length} unchanged, ${report.deleted.length} deleted) in ${report.seconds.toFixed(1)} s`,
);
for (const s of report.skipped) console.log(`skipped ${s.file}: ${s.message}`);

// File paths in qa.json are relative to the corpus folder; indexed paths are relative to the folder indexed.
const indexedPrefix = path.relative(corpus, docsDir).split(path.sep).join('/');
const toQaPath = (file: string) => (indexedPrefix ? `${indexedPrefix}/${file}` : file);
const outcomes: QuestionOutcome[] = [];
const latencies: number[] = [];
for (const q of qa.questions) {
  const t = performance.now();
  const hits = await index.search(q.question, { topK: Math.max(10, topK) });
  latencies.push(performance.now() - t);
  const files = hits.map((h) => toQaPath(h.chunk.metadata.file));
  const rank = firstRelevantRank(files, q.relevant_files);
  const top = hits.slice(0, topK);
  const found = passageInTexts(
    q.supporting_passage.text,
    top.filter((h) => toQaPath(h.chunk.metadata.file) === q.supporting_passage.file).map((h) => h.chunk.text),
  );
  outcomes.push(
    rank === undefined
      ? { id: q.id, passageFound: found }
      : { id: q.id, firstRelevantRank: rank, passageFound: found },
  );
  const mark = rank !== undefined && rank <= topK ? 'HIT ' : 'MISS';
  const where = top[0]
    ? `${top[0].chunk.metadata.file}${top[0].chunk.metadata.page ? ` p.${top[0].chunk.metadata.page}` : ''}`
    : '-';
  console.log(
    `${q.id} ${mark} rank=${rank ?? '-'} passage=${found ? 'yes' : 'no '} top1=${where} | ${q.question.slice(0, 70)}`,
  );
}
const m = aggregateMetrics(outcomes);
latencies.sort((a, b) => a - b);
console.log(
  `questions=${m.questions} hit@1=${m.hitAt1.toFixed(3)} hit@5=${m.hitAt5.toFixed(3)} mrr=${m.mrr.toFixed(3)} passage-found=${m.passageFound.toFixed(3)} query-p50=${latencies[Math.floor(latencies.length / 2)]?.toFixed(1)}ms`,
);
console.log(formatSummaryLine(m));
await embedding.dispose?.();
