/**
 * `pnpm --filter @crp/rag bench [--corpus DIR] [--chunks N] [--queries N] [--runs N] [--cli-runs N] [--skip-indexing]
 *  [--keep-index DIR]`
 * 1. Indexing speed: chunks/s and pages/s of a full (non-incremental) index of the corpus with the default
 *    embedding (static USE-lite; its piece table is computed or read from the cache before timing), the
 *    median of `--runs` runs (default 3). Loading (PDF text, clean-up, chunking) and embedding are included.
 * 2. Query latency (no LLM): hybrid search with cross-lingual concepts, question embedding included, on a
 *    synthetic index of N chunks (default 10,000): p50 and p95 over `--queries` questions.
 * 3. Opening the synthetic index (read, BM25 build) and `ask` without the explanation views, as the CLI does.
 * 4. `crp-rag ask` (the package's bin) as a new process on the synthetic index (wall and the process's own CPU
 *    time): the first process (with no stems remembered in the cache folder), then the median of `--cli-runs`
 *    more (default 5), each with another question.
 * Prints a table and writes bench-results.json (median and every run); `pnpm bench` merges it into
 * bench/results.json.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { mulberry32 } from '@crp/common';
import { writeJsonAtomic } from '@crp/common/node';
import { stemCacheFile } from '../src/node/stem-cache.js';
import {
  type Chunk,
  normalizeVector,
  PIPELINE_VERSION,
  RagEngine,
  RagIndex,
  UseLiteEmbedding,
  writeIndexFile,
} from '../src/node.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../..');
const { values } = parseArgs({
  options: {
    corpus: {
      type: 'string',
      default: process.env.CRP_RAG_CORPUS ?? path.join(repoRoot, 'vendor/rag-corpus'),
    },
    chunks: { type: 'string', default: '10000' },
    queries: { type: 'string', default: '200' },
    runs: { type: 'string', default: '3' },
    'skip-indexing': { type: 'boolean', default: false },
    /** `crp-rag ask` processes timed after the first one. */
    'cli-runs': { type: 'string', default: '5' },
    /** Write the synthetic index here and keep it (to profile `crp-rag ask` on it). */
    'keep-index': { type: 'string' },
  },
});
interface Result {
  name: string;
  /** The median (or the percentile the name says). */
  value: number;
  unit: string;
  note?: string;
  /** Every timed run, when the figure is a median of runs. */
  runs?: number[];
}
const results: Result[] = [];
const loadAtStart = os.loadavg()[0]!;
const embedding = new UseLiteEmbedding();
const tmp = await mkdtemp(path.join(os.tmpdir(), 'crp-rag-bench-'));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const median = (xs: number[]) => pct(xs, 50);
const log = (s: string) => process.stderr.write(`${s}\n`);

try {
  const corpus = path.resolve(values.corpus!);
  const docs = existsSync(path.join(corpus, 'docs')) ? path.join(corpus, 'docs') : corpus;
  let questions = ['How does the epsilon rule stabilise relevance?', 'Wie werden Einbettungen gespeichert?'];
  for (const f of ['qa.json', 'qa-extra.json']) {
    if (!existsSync(path.join(corpus, f))) continue;
    const qa = JSON.parse(await readFile(path.join(corpus, f), 'utf8')) as {
      questions: { question: string }[];
    };
    questions = [...questions, ...qa.questions.map((q) => q.question)];
  }
  await embedding.embed(['warm up']); // piece table (cached after the first run on a machine)

  let vocabularyText = questions.join(' ');
  if (!values['skip-indexing'] && existsSync(docs)) {
    const chunksPerS: number[] = [];
    const pagesPerS: number[] = [];
    for (let run = 0; run < Number(values.runs); run++) {
      const index = await RagIndex.open({ dir: path.join(tmp, `corpus-index-${run}`), embedding });
      const r = await index.update(docs);
      chunksPerS.push(r.chunkCount / r.seconds);
      pagesPerS.push(r.pagesLoaded / r.seconds);
      log(`indexing run ${run + 1}: ${r.chunkCount} chunks in ${r.seconds.toFixed(2)} s`);
      if (run === 0) vocabularyText += ` ${index.chunks.map((c) => c.text).join(' ')}`;
    }
    results.push({
      name: 'rag.index.chunks_per_s',
      value: median(chunksPerS),
      runs: chunksPerS,
      unit: 'chunks/s',
      note: `full index of the corpus (load, clean, chunk, embed with ${embedding.id}); median of ${chunksPerS.length}; target >= 100`,
    });
    results.push({
      name: 'rag.index.pages_per_s',
      value: median(pagesPerS),
      runs: pagesPerS,
      unit: 'pages/s',
      note: `the same runs in pages; median of ${pagesPerS.length}`,
    });
  }

  // Synthetic index: chunks of text drawn from the corpus vocabulary, random unit vectors.
  const n = Number(values.chunks);
  const rand = mulberry32(1);
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
      metadata: {
        file,
        title: file,
        startChar: 0,
        endChar: text.length,
        language: i % 5 === 0 ? 'de' : 'en',
      },
    });
    vectors.push(normalizeVector(Float32Array.from({ length: 512 }, () => rand() * 2 - 1)));
  }
  const synthDir = values['keep-index']
    ? path.resolve(values['keep-index'])
    : path.join(tmp, 'synthetic-index');
  await writeIndexFile(synthDir, {
    embeddingId: embedding.id,
    dimensions: 512,
    chunking: { chunkSize: 200, chunkOverlap: 40 },
    pipeline: PIPELINE_VERSION,
    files: {},
    chunks,
    vectors,
    syncedStores: [],
    updatedAt: new Date().toISOString(),
  });
  // the first open analyses the chunks (an index written without its terms); save it as `update` would
  await writeIndexFile(
    synthDir,
    (await RagEngine.open({ dir: synthDir, embedding, generator: null })).index.snapshot,
  );
  const opens: number[] = [];
  let engine: RagEngine | undefined;
  const openCpu: number[] = [];
  const cpuMs = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    const c = cpuMs();
    engine = await RagEngine.open({ dir: synthDir, embedding, generator: null });
    opens.push(performance.now() - t);
    openCpu.push(cpuMs() - c);
  }
  results.push({
    name: `rag.open_${n}_chunks.ms`,
    note: 'open the index: read, BM25 build (dictionary already loaded); median of 5; target < 2000',
    value: median(opens),
    runs: opens,
    unit: 'ms',
  });
  results.push({
    name: `rag.open_${n}_chunks.cpu_ms`,
    note: 'the same opens in CPU time of the process (less sensitive to other load on the machine)',
    value: median(openCpu),
    runs: openCpu,
    unit: 'ms',
  });
  const q = Number(values.queries);
  const search: number[] = [];
  for (let i = 0; i < 10; i++) await engine!.index.search(questions[i % questions.length]!, { topK: 5 }); // warm
  for (let i = 0; i < q; i++) {
    const question = questions[i % questions.length]!;
    const t = performance.now();
    await engine!.index.search(question, { topK: 5 });
    search.push(performance.now() - t);
  }
  results.push({
    name: `rag.query_${n}_chunks.p50_ms`,
    note: `hybrid retrieval with cross-lingual concepts, question embedding included, no LLM; ${q} questions`,
    value: pct(search, 50),
    unit: 'ms',
  });
  results.push({
    name: `rag.query_${n}_chunks.p95_ms`,
    note: `hybrid retrieval, no LLM; ${q} questions; target < 100 ms`,
    value: pct(search, 95),
    unit: 'ms',
  });
  const ask: number[] = [];
  for (let i = 0; i < Math.min(q, 30); i++) {
    const t = performance.now();
    await engine!.ask(questions[i % questions.length]!, { explain: false });
    ask.push(performance.now() - t);
  }
  results.push({
    name: `rag.ask_${n}_chunks.p50_ms`,
    note: 'retrieval + extractive answer + grounding, no explanation views (as `crp-rag ask`); target < 1000',
    value: pct(ask, 50),
    unit: 'ms',
  });
  // `crp-rag ask` as a user runs it: a new process that loads the CLI, the dictionary and the embedding model,
  // opens the index and answers (extractive, no explanation views); its own CPU time is reported at exit
  // the package's bin (the bundled CLI), as `npx crp-rag` runs it
  const bin = (
    JSON.parse(await readFile(path.resolve(here, '../package.json'), 'utf8')) as {
      bin: Record<string, string>;
    }
  ).bin['crp-rag']!;
  const cli = path.resolve(here, '..', bin);
  if (existsSync(cli)) {
    const wall: number[] = [];
    const cpu: number[] = [];
    const report =
      "data:text/javascript,process.on('exit',()=>{const u=process.cpuUsage();process.stderr.write('CRP_CPU_MS='+(u.user+u.system)/1000+'\\n')})";
    // run 0 is the first process after the index was written, with no stems remembered (the piece table is, by the
    // warm-up above); the median is of the rest, each with a question of its own
    await rm(stemCacheFile(process.env.CRP_RAG_CACHE_DIR || path.join(os.tmpdir(), 'crp-rag-cache')), {
      force: true,
    });
    for (let i = 0; i <= Number(values['cli-runs']); i++) {
      const t = performance.now();
      const r = spawnSync(
        process.execPath,
        [
          '--import',
          report,
          cli,
          'ask',
          questions[i % questions.length]!,
          '--index',
          synthDir,
          '--llm',
          'none',
        ],
        { encoding: 'utf8' },
      );
      wall.push(performance.now() - t);
      if (r.status !== 0) throw new Error(`crp-rag ask failed: ${r.stderr}`);
      cpu.push(Number(/CRP_CPU_MS=([\d.]+)/.exec(r.stderr)?.[1] ?? Number.NaN));
    }
    results.push({
      name: `rag.cli_ask_${n}_chunks.first_cpu_ms`,
      note: `the first crp-rag ask process after the index was written (${bin}), no stems remembered yet, CPU time; wall ${wall[0]!.toFixed(0)} ms`,
      value: cpu[0]!,
      unit: 'ms',
    });
    results.push({
      name: `rag.cli_ask_${n}_chunks.ms`,
      note: `crp-rag ask as a process (start, dictionary, USE-lite, open the index, answer); median of the ${wall.length - 1} runs after the first`,
      value: median(wall.slice(1)),
      runs: wall.slice(1),
      unit: 'ms',
    });
    results.push({
      name: `rag.cli_ask_${n}_chunks.cpu_ms`,
      note: 'the same processes in their own CPU time (less sensitive to other load on the machine); target < 1000',
      value: median(cpu.slice(1)),
      runs: cpu.slice(1),
      unit: 'ms',
    });
  }
} finally {
  await embedding.dispose();
  await rm(tmp, { recursive: true, force: true });
}

// wall times on a shared machine are mostly waiting: the load says how much (CPU times say more)
const loadAtEnd = os.loadavg()[0]!;
results.push({
  name: 'rag.load_average_1min',
  note: 'the 1-minute load average when the bench started and ended (2 cores here); median of the two',
  value: (loadAtStart + loadAtEnd) / 2,
  runs: [loadAtStart, loadAtEnd],
  unit: 'load',
});
const round = (x: number) => Number(x.toFixed(3));
const rounded = results.map(({ value, runs, ...r }) => ({
  ...r,
  median: round(value),
  value: round(value),
  ...(runs ? { runs: runs.map(round) } : {}),
}));
const width = Math.max(...results.map((r) => r.name.length));
console.log(`${'benchmark'.padEnd(width)}  ${'value'.padStart(10)}  unit`);
for (const r of rounded)
  console.log(`${r.name.padEnd(width)}  ${r.value.toFixed(2).padStart(10)}  ${r.unit}`);
const own = path.resolve(here, '../bench-results.json');
await writeJsonAtomic(own, rounded);
// the repository bench (bench/src/run.ts) merges this file into bench/results.json
console.log(`wrote ${own}`);
