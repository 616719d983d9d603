import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CrpError, describeError, isCrpError, type Progress } from '@crp/common';
import { writeJsonAtomic } from '@crp/common/node';
import type { AnswerGenerator } from '../answer/llm-answer.js';
import type { EmbeddingProvider } from '../embeddings/embedding-provider.js';
import { HashEmbedding } from '../embeddings/hash-embedding.js';
import type { IndexReport } from '../rag-index.js';
import { ChromaVectorStore } from './chroma-vector-store.js';
import { startRagServer } from './http-server.js';
import { createLlmGenerator, defaultGenerator, type LlmProviderName } from './llm-generator.js';
import { OpenAICompatibleEmbedding } from './openai-compatible-embedding.js';
import { downloadPaper } from './paper-download.js';
import { RagEngine } from './rag-folder.js';
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
  --llm <spec>           groq[:model] | openai[:model] | ollama[:model] | none
                         (default: groq when GROQ_API_KEY is set, else none = extractive, offline)
  --top-k <n>            number of sources (default 5)
  --json                 ask: print the full answer (sources, grounding, explanation data) as JSON
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
  if (spec === 'use-lite') return new UseLiteEmbedding();
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

/** Builds an answer generator from a CLI spec `provider[:model]`; `none` gives undefined (extractive). */
export function generatorFromSpec(spec: string): AnswerGenerator | undefined {
  if (spec === 'none' || spec === 'extractive') return undefined;
  const i = spec.indexOf(':');
  const provider = (i < 0 ? spec : spec.slice(0, i)) as LlmProviderName;
  if (!['openai', 'groq', 'ollama'].includes(provider)) {
    throw new CrpError(
      'invalid-argument',
      `Unknown --llm "${spec}"; valid: groq[:model], openai[:model], ollama[:model], none.`,
    );
  }
  return createLlmGenerator({ provider, ...(i >= 0 ? { model: spec.slice(i + 1) } : {}) });
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

function reportLine(r: IndexReport, files: number): string {
  return (
    `indexed ${r.chunkCount} chunks from ${files} files (${r.pageCount} pages) in ${r.seconds.toFixed(1)} s: ` +
    `${r.added.length} added, ${r.changed.length} changed, ${r.unchanged.length} unchanged, ${r.deleted.length} deleted, ${r.embeddedChunks} chunks embedded\n`
  );
}

/**
 * Runs the CLI with arguments (without `node` and script). Returns the exit code; `serve` returns a
 * function that stops the server instead of ending.
 */
export async function runCli(
  argv: readonly string[],
  io: CliIo,
): Promise<{ code: number; stop?: () => Promise<void> }> {
  let parsed: ReturnType<typeof parse>;
  function parse() {
    return parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        index: { type: 'string', default: '.crp-rag' },
        embedding: { type: 'string' },
        chroma: { type: 'string' },
        llm: { type: 'string' },
        'top-k': { type: 'string', default: '5' },
        json: { type: 'boolean', default: false },
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '8080' },
        corpus: { type: 'string' },
        name: { type: 'string' },
        timeout: { type: 'string' },
        retries: { type: 'string' },
        'max-bytes': { type: 'string' },
        overwrite: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  }
  try {
    parsed = parse();
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
  if (!['index', 'add', 'ask', 'serve'].includes(command)) {
    io.err(`Unknown command "${command}"; valid: index, add, ask, serve.\n\n${CLI_USAGE}\n`);
    return { code: 2 };
  }
  const indexDir = path.resolve(values.index!);
  let embedding: EmbeddingProvider | undefined;
  try {
    const settings = await readSettings(indexDir);
    const spec = values.embedding ?? settings.embedding ?? 'use-lite';
    const chromaUrl = values.chroma ?? settings.chroma;
    embedding = embeddingFromSpec(spec);
    const chroma = chromaUrl ? ChromaVectorStore.fromUrl(chromaUrl) : undefined;
    const vectorStore = chroma ? { vectorStore: { key: chroma.key, store: chroma } } : {};
    const topK = Number(values['top-k']);
    if (!Number.isInteger(topK) || topK < 1 || topK > 50)
      throw new CrpError(
        'invalid-argument',
        `--top-k must be an integer from 1 to 50; got "${values['top-k']}".`,
      );
    const generator = values.llm !== undefined ? generatorFromSpec(values.llm) : defaultGenerator();
    const remember = () =>
      writeJsonAtomic(path.join(indexDir, SETTINGS), {
        embedding: spec,
        ...(chromaUrl ? { chroma: chromaUrl } : {}),
      });
    if (command === 'index' || command === 'add') {
      const engine = await RagEngine.open({ dir: indexDir, embedding, generator: null, ...vectorStore });
      let origins = {};
      let folder: string;
      if (command === 'add') {
        if (rest.length !== 1)
          throw new CrpError(
            'invalid-argument',
            'add needs one URL or arXiv id: crp-rag add <url|arxiv:ID>.',
          );
        const corpus = values.corpus ?? engine.index.snapshot.sourceDir;
        if (!corpus) {
          throw new CrpError(
            'invalid-argument',
            `add needs the corpus folder: --corpus <dir>, or an index built with \`crp-rag index <dir>\` in ${indexDir}.`,
          );
        }
        const num = (v: string | undefined, name: string) => {
          if (v === undefined) return undefined;
          const n = Number(v);
          if (!Number.isInteger(n) || n < 0)
            throw new CrpError('invalid-argument', `--${name} must be a non-negative integer; got "${v}".`);
          return n;
        };
        const timeoutMs = num(values.timeout, 'timeout');
        const retries = num(values.retries, 'retries');
        const maxBytes = num(values['max-bytes'], 'max-bytes');
        const paper = await downloadPaper(rest[0]!, {
          corpusDir: corpus,
          ...(values.name ? { fileName: values.name } : {}),
          ...(timeoutMs !== undefined ? { timeoutMs } : {}),
          ...(retries !== undefined ? { retries } : {}),
          ...(maxBytes !== undefined ? { maxBytes } : {}),
          overwrite: values.overwrite!,
        });
        io.out(
          `${paper.written ? 'downloaded' : 'already there:'} ${paper.path} (${paper.origin.bytes} bytes, sha256 ${paper.origin.sha256})\n`,
        );
        origins = { [paper.file]: paper.origin };
        folder = corpus;
      } else {
        if (rest.length !== 1)
          throw new CrpError('invalid-argument', 'index needs exactly one folder: crp-rag index <dir>.');
        folder = rest[0]!;
      }
      const r = await engine.update(folder, { onProgress: progressBar(io), origins });
      if (io.isTTY) io.err('\n');
      await remember();
      io.out(reportLine(r, Object.keys(engine.index.files).length));
      for (const s of r.skipped) io.err(`skipped ${s.file} (${s.code}): ${s.message}\n`);
      for (const w of r.warnings) io.err(`warning: ${w}\n`);
      if (command === 'add') {
        const file = Object.keys(origins)[0]!;
        const skipped = r.skipped.find((s) => s.file === file);
        if (skipped)
          throw new CrpError(
            skipped.code as 'unsupported-format',
            `${file} was downloaded but not indexed: ${skipped.message}`,
          );
      }
      return { code: 0 };
    }
    if (command === 'ask') {
      const question = rest.join(' ').trim();
      if (!question)
        throw new CrpError('invalid-argument', 'ask needs a question: crp-rag ask "<question>".');
      const engine = await RagEngine.open({
        dir: indexDir,
        embedding,
        generator: generator ?? null,
        ...vectorStore,
      });
      const a = await engine.ask(question, { topK, explain: values.json ? { embeddingMap: true } : false });
      if (values.json) io.out(`${JSON.stringify(a, null, 2)}\n`);
      else {
        io.out(`${a.answer || '(no answer found)'}\n\n`);
        io.out(
          `(${a.mode}; answer in ${a.language === 'de' ? 'German' : 'English'}${a.grounded ? '' : '; NOT fully grounded'})\n`,
        );
        for (const s of a.sentences.filter((x) => !x.supported))
          io.out(`unsupported: ${s.text}${s.notes ? ` (${s.notes.join('; ')})` : ''}\n`);
        io.out('Sources:\n');
        for (const s of a.sources)
          io.out(`  ${s.n}. ${s.citation} ${s.title} [${s.language}] (score ${s.score.toFixed(3)})\n`);
      }
      return { code: 0 };
    }
    const engine = await RagEngine.open({
      dir: indexDir,
      embedding,
      generator: generator ?? null,
      ...vectorStore,
    });
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new CrpError(
        'invalid-argument',
        `--port must be an integer from 0 to 65535; got "${values.port}".`,
      );
    const server = await startRagServer(engine, { host: values.host!, port });
    io.out(
      `serving ${engine.index.chunks.length} chunks on ${server.url}/${chroma ? ` (vectors in ${chroma.key})` : ''}\n`,
    );
    const emb = embedding;
    embedding = undefined; // the server keeps using it
    return {
      code: 0,
      stop: async () => {
        await server.close();
        await emb.dispose?.();
      },
    };
  } catch (error) {
    const code = isCrpError(error) ? error.code : 'error';
    io.err(`crp-rag: ${code}: ${describeError(error)}\n`);
    return { code: 1 };
  } finally {
    await embedding?.dispose?.();
  }
}
