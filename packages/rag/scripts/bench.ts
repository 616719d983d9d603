/**
 * `pnpm --filter @crp/rag bench [--corpus DIR] [--chunks N] [--queries N]`
 * 1. Indexing speed: pages/s of a full (non-incremental) index of the corpus with the default embedding.
 * 2. Query latency (no LLM): hybrid search, question embedding included, on a synthetic index of N chunks.
 * Prints a table and writes bench-results.json ([{name, value, unit}]).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type Chunk,
  normalizeVector,
  RagEngine,
  RagIndex,
  seededRandom,
  UseLiteEmbedding,
  writeIndexFile,
} from '../src/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    corpus: { type: 'string', default: path.resolve(here, '../../../../shared/rag-corpus') },
    chunks: { type: 'string', default: '10000' },
    queries: { type: 'string', default: '200' },
    'skip-indexing': { type: 'boolean', default: false },
  },
});
const results: { name: string; value: number; unit: string; note?: string }[] = [];
const embedding = new UseLiteEmbedding();
const tmp = await mkdtemp(path.join(os.tmpdir(), 'crp-rag-bench-'));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

try {
  const corpus = path.resolve(values.corpus!);
  const docs = existsSync(path.join(corpus, 'docs')) ? path.join(corpus, 'docs') : corpus;
  let questions = ['How does the epsilon rule stabilise relevance?', 'Wie werden Einbettungen gespeichert?'];
  if (existsSync(path.join(corpus, 'qa.json'))) {
    questions = (
      JSON.parse(await readFile(path.join(corpus, 'qa.json'), 'utf8')) as {
        questions: { question: string }[];
      }
    ).questions.map((q) => q.question);
  }
  await embedding.embed(['warm up']);

  let vocabularyText = questions.join(' ');
  if (!values['skip-indexing'] && existsSync(docs)) {
    const index = await RagIndex.open({ dir: path.join(tmp, 'corpus-index'), embedding });
    const r = await index.update(docs);
    results.push({
      name: 'rag.index.pages_per_s',
      note: 'indexing speed of the corpus, default USE-lite embedding (wasm)',
      value: r.pagesLoaded / r.seconds,
      unit: 'pages/s',
    });
    results.push({
      name: 'rag.index.chunks_per_s',
      value: r.chunkCount / r.seconds,
      unit: 'chunks/s',
      note: 'indexing speed in chunks',
    });
    vocabularyText += ` ${index.chunks.map((c) => c.text).join(' ')}`;
  }

  // Synthetic index: chunks of text drawn from the corpus vocabulary, random unit vectors.
  const n = Number(values.chunks);
  const rand = seededRandom(1);
  const words = vocabularyText.split(/\s+/).filter((w) => /^[\p{L}-]{3,}$/u.test(w));
  const chunks: Chunk[] = [];
  const vectors: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const len = 80 + Math.floor(rand() * 120);
    const text = Array.from({ length: len }, () => words[Math.floor(rand() * words.length)]!).join(' ');
    const file = `synthetic-${Math.floor(i / 20)}.md`;
    chunks.push({
      id: `${file}#0:${i}`,
      text,
      metadata: { file, title: file, startChar: 0, endChar: text.length, language: 'en' },
    });
    vectors.push(normalizeVector(Float32Array.from({ length: 512 }, () => rand() * 2 - 1)));
  }
  const synthDir = path.join(tmp, 'synthetic-index');
  await writeIndexFile(synthDir, {
    embeddingId: embedding.id,
    dimensions: 512,
    chunking: { chunkSize: 200, chunkOverlap: 40 },
    files: {},
    chunks,
    vectors,
    syncedStores: [],
    updatedAt: new Date().toISOString(),
  });
  let t = performance.now();
  const engine = await RagEngine.open({ dir: synthDir, embedding });
  results.push({
    name: `rag.open_${n}_chunks.ms`,
    note: 'open the index: load + BM25 build',
    value: performance.now() - t,
    unit: 'ms',
  });
  const q = Number(values.queries);
  const search: number[] = [];
  for (let i = 0; i < q; i++) {
    const question = questions[i % questions.length]!;
    t = performance.now();
    await engine.index.search(question, { topK: 5 });
    search.push(performance.now() - t);
  }
  results.push({
    name: `rag.query_${n}_chunks.p50_ms`,
    note: 'hybrid retrieval, no LLM',
    value: pct(search, 50),
    unit: 'ms',
  });
  results.push({
    name: `rag.query_${n}_chunks.p95_ms`,
    note: 'hybrid retrieval, no LLM; target < 100 ms',
    value: pct(search, 95),
    unit: 'ms',
  });
  const ask: number[] = [];
  for (let i = 0; i < Math.min(q, 30); i++) {
    t = performance.now();
    await engine.ask(questions[i % questions.length]!, { explain: false });
    ask.push(performance.now() - t);
  }
  results.push({
    name: `rag.ask_${n}_chunks.p50_ms`,
    note: 'extractive answer + grounding',
    value: pct(ask, 50),
    unit: 'ms',
  });
} finally {
  await embedding.dispose();
  await rm(tmp, { recursive: true, force: true });
}

const width = Math.max(...results.map((r) => r.name.length));
console.log(`${'benchmark'.padEnd(width)}  ${'value'.padStart(10)}  unit`);
for (const r of results)
  console.log(`${r.name.padEnd(width)}  ${r.value.toFixed(2).padStart(10)}  ${r.unit}`);
const out = path.resolve(here, '../bench-results.json');
await writeFile(
  out,
  `${JSON.stringify(
    results.map((r) => ({ ...r, value: Number(r.value.toFixed(3)) })),
    null,
    2,
  )}\n`,
);
console.log(`wrote ${out}`);
