import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CrpError, describeError, isCrpError, type Progress } from '@crp/common';
import { writeJsonAtomic } from '@crp/common/node';
import { answerText } from '../answer/extractive-answer.js';
import type { AnswerGenerator } from '../answer/llm-answer.js';
import type { EmbeddingProvider } from '../embeddings/embedding-provider.js';
import { HashEmbedding } from '../embeddings/hash-embedding.js';
import type { RagAnswer } from '../rag-engine.js';
import type { IndexReport } from '../rag-index.js';
import type { FileOrigin, FileRecord } from '../store/snapshot.js';
import { ragCacheDir } from './cache-dir.js';
import type { ChromaVectorStore } from './chroma-vector-store.js';
import { defaultGenerator, generatorFromSpec } from './llm-generator.js';
import { OpenAICompatibleEmbedding } from './openai-compatible-embedding.js';
import { RagEngine } from './rag-folder.js';
import { loadStemCache, saveStemCache } from './stem-cache.js';
import { TransformersEmbedding } from './transformers-embedding.js';
import { UseLiteEmbedding } from './use-lite-embedding.js';

/** Where the CLI writes. */
export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly isTTY?: boolean;
}

export const CLI_USAGE = `Usage: crp-rag <command> [options]

Commands:
  index <dir>            index (or incrementally re-index) the PDF, Markdown, HTML and text files under <dir>
  add <url|arxiv:ID>     download a paper (PDF) into the corpus folder and index it
  ask "<question>"       answer a question from the index, with sources
  serve                  serve the web page on http://127.0.0.1:<port>

Options:
  --index <dir>          index folder (default .crp-rag)
  --embedding <spec>     use-lite (default, static) | use-lite-contextual | hash | transformers:<model-dir>
                         | transformers-hub:<model-id>
                         | openai:<model>@<base-url>   (remembered by \`index\`; ask and serve use the remembered one)
  --chroma <url>         keep the vectors in a Chroma server and search it: http://HOST:PORT[/collection]
                         (remembered by \`index\`)
  --llm <spec>           ollama[:model] (a server on this machine, OLLAMA_HOST) | llama-cpp:<file.gguf>
                         (node-llama-cpp, a model file you have) | groq[:model] | openai[:model] | none
                         (default: CRP_RAG_LLM, else groq when GROQ_API_KEY is set, else none = extractive,
                         offline); generated answers stream as they are written
  --top-k <n>            number of sources (default 5)
  --json                 ask: print the full answer (sources, grounding, each sentence's kind: prose or code;
                         with --explain the explanation) as JSON
  --explain              ask: also compute why each source was found (shared words; with --json the
                         embedding map and sentence heatmaps); plain answers skip it and come faster
  --host <host>          serve: bind address (default 127.0.0.1)
  --port <port>          serve: port (default 8080)
  --corpus <dir>         add: folder to save the paper in (default: the folder the index was built from)
  --name <file.pdf>      add: file name (default from the URL or arXiv id)
  --timeout <ms>         add: time limit per attempt (default 60000)
  --retries <n>          add: retries on network errors and HTTP 429/5xx (default 2)
  --max-bytes <n>        add: largest download (default 52428800)
  --overwrite            add: replace a different file of the same name
  -h, --help             this text`;

/** Builds an embedding provider from a CLI spec. */
export function embeddingFromSpec(spec: string): EmbeddingProvider {
  if (spec === 'use-lite') return new UseLiteEmbedding({ cacheDir: ragCacheDir() });
  if (spec === 'use-lite-contextual') return new UseLiteEmbedding({ mode: 'contextual' });
  if (spec === 'hash') return new HashEmbedding();
  if (spec.startsWith('transformers:'))
    return new TransformersEmbedding({ modelDir: spec.slice('transformers:'.length) });
  if (spec.startsWith('transformers-hub:'))
    return new TransformersEmbedding({ model: spec.slice('transformers-hub:'.length) });
  const m = /^openai:([^@]+)@(https?:\/\/.+)$/.exec(spec);
  if (m) return new OpenAICompatibleEmbedding({ model: m[1]!, baseURL: m[2]! });
  throw new CrpError(
    'invalid-argument',
    `Unknown embedding "${spec}"; valid: use-lite, use-lite-contextual, hash, transformers:<model-dir>, transformers-hub:<model-id>, openai:<model>@<base-url>.`,
  );
}

/** What `index` remembers in the index folder for `ask` and `serve`. */
interface CliSettings {
  embedding?: string;
  chroma?: string;
}

const SETTINGS = 'cli.json';

async function readSettings(indexDir: string): Promise<CliSettings> {
  try {
    return JSON.parse(await readFile(path.join(indexDir, SETTINGS), 'utf8')) as CliSettings;
  } catch {
    return {};
  }
}

function progressBar(io: CliIo) {
  let last = '';
  return (p: Progress) => {
    const width = 24;
    const total = p.total ?? p.done;
    const filled = total ? Math.round((p.done / total) * width) : width;
    const eta = p.etaMs !== undefined && p.done < total ? ` eta ${Math.ceil(p.etaMs / 1000)} s` : '';
    const line = `${(p.phase ?? '').padEnd(5)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${total}${eta}`;
    if (line === last) return;
    last = line;
    if (io.isTTY) io.err(`\r${line.padEnd(60)}`);
    else if (p.done === total) io.err(`${line}\n`);
  };
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * What the index holds, by kind: pages only for PDFs ("2 pages in 1 PDF, 2 Markdown files, 1 text file"); a
 * Markdown, HTML or text file has no pages, and counting each as one had called 30 Markdown files "30 pages".
 */
function describeContents(files: Readonly<Record<string, Pick<FileRecord, 'format' | 'pages'>>>): string {
  const records = Object.values(files);
  const pdfs = records.filter((f) => f.format === 'pdf');
  const parts: string[] = [];
  if (pdfs.length)
    parts.push(
      `${plural(
        pdfs.reduce((n, f) => n + f.pages, 0),
        'page',
      )} in ${plural(pdfs.length, 'PDF')}`,
    );
  for (const [format, name] of [
    ['markdown', 'Markdown'],
    ['html', 'HTML'],
    ['text', 'text'],
  ] as const) {
    const n = records.filter((f) => f.format === format).length;
    if (n) parts.push(`${n} ${name} ${n === 1 ? 'file' : 'files'}`);
  }
  return parts.join(', ');
}

function reportLine(r: IndexReport, files: Readonly<Record<string, FileRecord>>): string {
  const n = Object.keys(files).length;
  return (
    `indexed ${r.chunkCount} chunks from ${plural(n, 'file')}${n ? ` (${describeContents(files)})` : ''} in ${r.seconds.toFixed(1)} s: ` +
    `${r.added.length} added, ${r.changed.length} changed, ${r.unchanged.length} unchanged, ${r.deleted.length} deleted, ${r.embeddedChunks} chunks embedded\n`
  );
}

const CLI_OPTIONS = {
  index: { type: 'string', default: '.crp-rag' },
  embedding: { type: 'string' },
  chroma: { type: 'string' },
  llm: { type: 'string' },
  'top-k': { type: 'string', default: '5' },
  json: { type: 'boolean', default: false },
  explain: { type: 'boolean', default: false },
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '8080' },
  corpus: { type: 'string' },
  name: { type: 'string' },
  timeout: { type: 'string' },
  retries: { type: 'string' },
  'max-bytes': { type: 'string' },
  overwrite: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

const COMMANDS = ['index', 'add', 'ask', 'serve'] as const;
type Command = (typeof COMMANDS)[number];

function parseCliArgs(argv: readonly string[]) {
  return parseArgs({ args: [...argv], allowPositionals: true, options: CLI_OPTIONS });
}

type CliValues = ReturnType<typeof parseCliArgs>['values'];

/** What every command works with: the index folder and the embedding, vector store and answerer it uses. */
interface CliContext {
  readonly values: CliValues;
  /** Positional arguments after the command. */
  readonly rest: readonly string[];
  readonly indexDir: string;
  readonly embeddingSpec: string;
  readonly chromaUrl: string | undefined;
  readonly embedding: EmbeddingProvider;
  readonly chroma: ChromaVectorStore | undefined;
  readonly topK: number;
  readonly generator: AnswerGenerator | undefined;
}

/** Resolves the options of a command against what `index` remembered in the index folder. */
async function resolveContext(values: CliValues, rest: readonly string[]): Promise<CliContext> {
  const indexDir = path.resolve(values.index);
  const settings = await readSettings(indexDir);
  const embeddingSpec = values.embedding ?? settings.embedding ?? 'use-lite';
  const chromaUrl = values.chroma ?? settings.chroma;
  const topK = Number(values['top-k']);
  if (!Number.isInteger(topK) || topK < 1 || topK > 50)
    throw new CrpError(
      'invalid-argument',
      `--top-k must be an integer from 1 to 50; got "${values['top-k']}".`,
    );
  const generator = values.llm !== undefined ? generatorFromSpec(values.llm) : defaultGenerator();
  const embedding = embeddingFromSpec(embeddingSpec);
  // llamaindex and the Chroma client load only when a Chroma store is used (their import takes seconds)
  const chroma = chromaUrl
    ? (await import('./chroma-vector-store.js')).ChromaVectorStore.fromUrl(chromaUrl)
    : undefined;
  return { values, rest, indexDir, embeddingSpec, chromaUrl, embedding, chroma, topK, generator };
}

/** Opens the engine of the index folder; `answering: false` for indexing (no language model needed). */
function openEngine(ctx: CliContext, answering: boolean): Promise<RagEngine> {
  return RagEngine.open({
    dir: ctx.indexDir,
    embedding: ctx.embedding,
    generator: answering ? (ctx.generator ?? null) : null,
    ...(ctx.chroma ? { vectorStore: { key: ctx.chroma.key, store: ctx.chroma } } : {}),
  });
}

/** A non-negative integer option, or undefined when absent. */
function countOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new CrpError('invalid-argument', `--${name} must be a non-negative integer; got "${value}".`);
  return n;
}

/** `add`: downloads the paper into the corpus folder; returns the folder to index and the file's origin. */
async function downloadForAdd(
  ctx: CliContext,
  engine: RagEngine,
  io: CliIo,
): Promise<{ folder: string; origins: Record<string, FileOrigin> }> {
  if (ctx.rest.length !== 1)
    throw new CrpError('invalid-argument', 'add needs one URL or arXiv id: crp-rag add <url|arxiv:ID>.');
  const corpus = ctx.values.corpus ?? engine.index.snapshot.sourceDir;
  if (!corpus) {
    throw new CrpError(
      'invalid-argument',
      `add needs the corpus folder: --corpus <dir>, or an index built with \`crp-rag index <dir>\` in ${ctx.indexDir}.`,
    );
  }
  const timeoutMs = countOption(ctx.values.timeout, 'timeout');
  const retries = countOption(ctx.values.retries, 'retries');
  const maxBytes = countOption(ctx.values['max-bytes'], 'max-bytes');
  const { downloadPaper } = await import('./paper-download.js');
  const paper = await downloadPaper(ctx.rest[0]!, {
    corpusDir: corpus,
    ...(ctx.values.name ? { fileName: ctx.values.name } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(retries !== undefined ? { retries } : {}),
    ...(maxBytes !== undefined ? { maxBytes } : {}),
    overwrite: ctx.values.overwrite,
  });
  io.out(
    `${paper.written ? 'downloaded' : 'already there:'} ${paper.path} (${paper.origin.bytes} bytes, sha256 ${paper.origin.sha256})\n`,
  );
  return { folder: corpus, origins: { [paper.file]: paper.origin } };
}

/** `index <dir>` and `add <url>`: brings the index in line with the folder and remembers the settings. */
async function runIndex(command: 'index' | 'add', ctx: CliContext, io: CliIo): Promise<void> {
  // analysing the chunks stems every word: words stemmed before (by any command) are remembered
  await loadStemCache(ragCacheDir());
  const engine = await openEngine(ctx, false);
  let folder: string;
  let origins: Record<string, FileOrigin> = {};
  if (command === 'add') ({ folder, origins } = await downloadForAdd(ctx, engine, io));
  else {
    if (ctx.rest.length !== 1)
      throw new CrpError('invalid-argument', 'index needs exactly one folder: crp-rag index <dir>.');
    folder = ctx.rest[0]!;
  }
  const r = await engine.update(folder, { onProgress: progressBar(io), origins });
  if (io.isTTY) io.err('\n');
  await writeJsonAtomic(path.join(ctx.indexDir, SETTINGS), {
    embedding: ctx.embeddingSpec,
    ...(ctx.chromaUrl ? { chroma: ctx.chromaUrl } : {}),
  } satisfies CliSettings);
  io.out(reportLine(r, engine.index.files));
  await saveStemCache(ragCacheDir());
  for (const s of r.skipped) io.err(`skipped ${s.file} (${s.code}): ${s.message}\n`);
  for (const w of r.warnings) io.err(`warning: ${w}\n`);
  const added = Object.keys(origins)[0];
  const skipped = added !== undefined ? r.skipped.find((s) => s.file === added) : undefined;
  if (skipped)
    throw new CrpError(
      skipped.code as 'unsupported-format',
      `${added} was downloaded but not indexed: ${skipped.message}`,
    );
}

/** `ask "<question>"`: the answer as text (or JSON); the explanation views only with `--explain`. */
async function runAsk(ctx: CliContext, io: CliIo): Promise<void> {
  const question = ctx.rest.join(' ').trim();
  if (!question) throw new CrpError('invalid-argument', 'ask needs a question: crp-rag ask "<question>".');
  // the stems of the passages an earlier ask ranked: stemming them again was ~0.15 s of every process
  await loadStemCache(ragCacheDir());
  const engine = await openEngine(ctx, true);
  // a model's answer is shown as it is written (text output), then checked against the sources
  let streamed = false;
  const onToken = ctx.values.json
    ? undefined
    : (t: string) => {
        streamed = true;
        io.out(t);
      };
  const a = await engine.ask(question, {
    topK: ctx.topK,
    // text output shows only the shared words: the map is fitted only for --json
    explain: ctx.values.explain && (ctx.values.json || { embeddingMap: false }),
    ...(onToken ? { onToken } : {}),
  });
  if (ctx.values.json) io.out(`${JSON.stringify(a, null, 2)}\n`);
  else printAnswer(a, io, streamed);
  await saveStemCache(ragCacheDir());
}

/**
 * The answer (a code block indented by four spaces, as its lines are), how it was made, unsupported sentences, the
 * sources and (with `--explain`) why each was found.
 */
function printAnswer(a: RagAnswer, io: CliIo, streamed = false): void {
  const text = answerText(a.sentences, '    ') || a.answer;
  if (streamed) io.out(`\n\nWith citations:\n${text}\n\n`);
  else io.out(`${a.note ? `${a.note}\n` : ''}${text || '(no answer found)'}\n\n`);
  const glossed = a.sentences.filter((s) => s.gloss);
  if (glossed.length)
    io.out(
      `Word-by-word gloss from the dictionary (not a translation):\n${glossed.map((s) => `  ${s.gloss}`).join('\n')}\n\n`,
    );
  io.out(`(${a.mode}; ${answerLanguages(a)}${a.grounded ? '' : '; NOT fully grounded'})\n`);
  for (const s of a.sentences.filter((x) => !x.supported))
    io.out(`unsupported: ${s.text}${s.notes ? ` (${s.notes.join('; ')})` : ''}\n`);
  io.out('Sources:\n');
  for (const s of a.sources) {
    io.out(`  ${s.n}. ${s.citation} ${s.title} [${s.language}] (score ${s.score.toFixed(3)})\n`);
    const k = a.explanation?.keywords.find((x) => x.source === s.n);
    if (k?.shared.length)
      io.out(
        `     shared words: ${k.shared.map((w) => (w.translated ? `${w.word}⇄` : w.word)).join(', ')}\n`,
      );
  }
}

const LANGUAGE_NAMES: Record<string, string> = { en: 'English', de: 'German' };

/**
 * "answer in German", or for an answer quoting passages of both languages "quotes English and German" (one label
 * for it had called English quotations German).
 */
function answerLanguages(a: Pick<RagAnswer, 'language' | 'quotedLanguages'>): string {
  const name = (l: string) => LANGUAGE_NAMES[l] ?? l;
  const quoted = a.quotedLanguages ?? [];
  if (quoted.length > 1) return `quotes ${quoted.map(name).join(' and ')}`;
  return `answer in ${name(quoted[0] ?? a.language)}`;
}

/** `serve`: the web page and its API on the loopback interface (or `--host`); returns how to stop it. */
async function runServe(ctx: CliContext, io: CliIo): Promise<() => Promise<void>> {
  const port = Number(ctx.values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new CrpError(
      'invalid-argument',
      `--port must be an integer from 0 to 65535; got "${ctx.values.port}".`,
    );
  await loadStemCache(ragCacheDir());
  const engine = await openEngine(ctx, true);
  const { startRagServer } = await import('./http-server.js');
  const server = await startRagServer(engine, { host: ctx.values.host, port });
  io.out(
    `serving ${engine.index.chunks.length} chunks on ${server.url}/${ctx.chroma ? ` (vectors in ${ctx.chroma.key})` : ''}\n`,
  );
  return async () => {
    await server.close();
    // the stems of the questions served, for the next process
    await saveStemCache(ragCacheDir());
    await ctx.embedding.dispose?.();
  };
}

/**
 * Runs the CLI with arguments (without `node` and script). Returns the exit code; `serve` returns a
 * function that stops the server instead of ending.
 */
export async function runCli(
  argv: readonly string[],
  io: CliIo,
): Promise<{ code: number; stop?: () => Promise<void> }> {
  let parsed: ReturnType<typeof parseCliArgs>;
  try {
    parsed = parseCliArgs(argv);
  } catch (error) {
    io.err(`${describeError(error)}\n\n${CLI_USAGE}\n`);
    return { code: 2 };
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    io.out(`${CLI_USAGE}\n`);
    return { code: values.help ? 0 : 2 };
  }
  if (!COMMANDS.includes(command as Command)) {
    io.err(`Unknown command "${command}"; valid: ${COMMANDS.join(', ')}.\n\n${CLI_USAGE}\n`);
    return { code: 2 };
  }
  let ctx: CliContext | undefined;
  let serving = false;
  try {
    ctx = await resolveContext(values, rest);
    if (command === 'serve') {
      const stop = await runServe(ctx, io);
      serving = true; // the server keeps using the embedding until stopped
      return { code: 0, stop };
    }
    if (command === 'ask') await runAsk(ctx, io);
    else await runIndex(command as 'index' | 'add', ctx, io);
    return { code: 0 };
  } catch (error) {
    const code = isCrpError(error) ? error.code : 'error';
    // the engine's message speaks of providers; on the command line the way out is an option
    const hint =
      code === 'embedding-mismatch' && command !== 'index'
        ? ` Leave out --embedding (${command} then uses the one \`crp-rag index\` remembered), or index again with \`crp-rag index <dir> --embedding ${ctx?.embeddingSpec ?? '<spec>'}\`.`
        : '';
    io.err(`crp-rag: ${code}: ${describeError(error)}${hint}\n`);
    return { code: 1 };
  } finally {
    if (!serving) await ctx?.embedding.dispose?.();
  }
}
