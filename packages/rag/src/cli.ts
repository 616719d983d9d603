import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type AnswerGenerator, createLlmGenerator, type LlmProviderName } from './answer/llm-answer.js';
import type { EmbeddingProvider } from './embeddings/embedding-provider.js';
import { HashEmbedding } from './embeddings/hash-embedding.js';
import { OpenAICompatibleEmbedding } from './embeddings/openai-compatible-embedding.js';
import { TransformersEmbedding } from './embeddings/transformers-embedding.js';
import { UseLiteEmbedding } from './embeddings/use-lite-embedding.js';
import { describeError, RagError } from './errors.js';
import { RagEngine } from './rag-engine.js';
import { startRagServer } from './server/http-server.js';

/** Where the CLI writes. */
export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly isTTY?: boolean;
}

export const CLI_USAGE = `Usage: crp-rag <command> [options]

Commands:
  index <dir>            index (or incrementally re-index) the PDFs, Markdown and text files under <dir>
  ask "<question>"       answer a question from the index, with sources
  serve                  serve the web page on http://127.0.0.1:<port>

Options:
  --index <dir>          index folder (default .crp-rag)
  --embedding <spec>     use-lite (default) | hash | transformers:<model-dir> | openai:<model>@<base-url>
                         (remembered by \`index\`; ask and serve use the remembered one)
  --llm <provider:model> openai:<model> | groq:<model> | ollama:<model> (keys from OPENAI_API_KEY / GROQ_API_KEY)
  --top-k <n>            number of sources (default 5)
  --json                 ask: print the full answer (sources, grounding, explanation data) as JSON
  --host <host>          serve: bind address (default 127.0.0.1)
  --port <port>          serve: port (default 8080)
  -h, --help             this text`;

/** Builds an embedding provider from a CLI spec. */
export function embeddingFromSpec(spec: string): EmbeddingProvider {
  if (spec === 'use-lite') return new UseLiteEmbedding();
  if (spec === 'hash') return new HashEmbedding();
  if (spec.startsWith('transformers:'))
    return new TransformersEmbedding({ modelDir: spec.slice('transformers:'.length) });
  const m = /^openai:([^@]+)@(https?:\/\/.+)$/.exec(spec);
  if (m) return new OpenAICompatibleEmbedding({ model: m[1]!, baseURL: m[2]! });
  throw new RagError(
    'INVALID_ARGUMENT',
    `Unknown embedding "${spec}"; valid: use-lite, hash, transformers:<model-dir>, openai:<model>@<base-url>.`,
  );
}

/** Builds an answer generator from a CLI spec `provider:model`. */
export function generatorFromSpec(spec: string): AnswerGenerator {
  const i = spec.indexOf(':');
  const provider = spec.slice(0, i) as LlmProviderName;
  if (i < 0 || !['openai', 'groq', 'ollama'].includes(provider)) {
    throw new RagError(
      'INVALID_ARGUMENT',
      `Unknown --llm "${spec}"; valid: openai:<model>, groq:<model>, ollama:<model>.`,
    );
  }
  return createLlmGenerator({ provider, model: spec.slice(i + 1) });
}

const SETTINGS = 'cli.json';

async function rememberedEmbedding(indexDir: string): Promise<string | undefined> {
  try {
    return (JSON.parse(await readFile(path.join(indexDir, SETTINGS), 'utf8')) as { embedding?: string })
      .embedding;
  } catch {
    return undefined;
  }
}

function progressBar(io: CliIo) {
  let last = '';
  return (p: { phase: string; done: number; total: number; file?: string }) => {
    const width = 24;
    const filled = p.total ? Math.round((p.done / p.total) * width) : width;
    const line = `${p.phase.padEnd(5)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${p.total}`;
    if (line === last) return;
    last = line;
    if (io.isTTY) io.err(`\r${line}`);
    else if (p.done === p.total) io.err(`${line}\n`);
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
  let parsed: ReturnType<typeof parse>;
  function parse() {
    return parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        index: { type: 'string', default: '.crp-rag' },
        embedding: { type: 'string' },
        llm: { type: 'string' },
        'top-k': { type: 'string', default: '5' },
        json: { type: 'boolean', default: false },
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '8080' },
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
  const indexDir = path.resolve(values.index!);
  try {
    const spec = values.embedding ?? (await rememberedEmbedding(indexDir)) ?? 'use-lite';
    const embedding = embeddingFromSpec(spec);
    const topK = Number(values['top-k']);
    if (command === 'index') {
      if (rest.length !== 1)
        throw new RagError('INVALID_ARGUMENT', 'index needs exactly one folder: crp-rag index <dir>.');
      const engine = await RagEngine.open({ dir: indexDir, embedding });
      const r = await engine.update(rest[0]!, { onProgress: progressBar(io) });
      if (io.isTTY) io.err('\n');
      await mkdir(indexDir, { recursive: true });
      await writeFile(path.join(indexDir, SETTINGS), `${JSON.stringify({ embedding: spec }, null, 2)}\n`);
      io.out(
        `indexed ${r.chunkCount} chunks from ${Object.keys(engine.index.files).length} files (${r.pageCount} pages) in ${r.seconds.toFixed(1)} s: ` +
          `${r.added.length} added, ${r.changed.length} changed, ${r.unchanged.length} unchanged, ${r.deleted.length} deleted, ${r.embeddedChunks} chunks embedded\n`,
      );
      for (const s of r.skipped) io.err(`skipped ${s.file} (${s.code}): ${s.message}\n`);
      await embedding.dispose?.();
      return { code: 0 };
    }
    if (command === 'ask') {
      const question = rest.join(' ').trim();
      if (!question)
        throw new RagError('INVALID_ARGUMENT', 'ask needs a question: crp-rag ask "<question>".');
      const engine = await RagEngine.open({ dir: indexDir, embedding });
      const generator = values.llm ? generatorFromSpec(values.llm) : undefined;
      const a = await engine.ask(question, {
        topK,
        explain: values.json ? { embeddingMap: true } : false,
        ...(generator ? { generator } : {}),
      });
      if (values.json) io.out(`${JSON.stringify(a, null, 2)}\n`);
      else {
        io.out(`${a.answer || '(no answer found)'}\n\n`);
        for (const s of a.sentences.filter((x) => !x.supported)) io.out(`unsupported: ${s.text}\n`);
        io.out('Sources:\n');
        for (const s of a.sources)
          io.out(`  ${s.n}. ${s.citation} ${s.title} (score ${s.score.toFixed(3)})\n`);
      }
      await embedding.dispose?.();
      return { code: 0 };
    }
    if (command === 'serve') {
      const engine = await RagEngine.open({ dir: indexDir, embedding });
      const generator = values.llm ? generatorFromSpec(values.llm) : undefined;
      const server = await startRagServer(engine, {
        host: values.host!,
        port: Number(values.port),
        ...(generator ? { generator } : {}),
      });
      io.out(`serving ${engine.index.chunks.length} chunks on ${server.url}/\n`);
      return { code: 0, stop: server.close };
    }
    io.err(`Unknown command "${command}"; valid: index, ask, serve.\n\n${CLI_USAGE}\n`);
    return { code: 2 };
  } catch (error) {
    const code = error instanceof RagError ? error.code : 'ERROR';
    io.err(`crp-rag: ${code}: ${describeError(error)}\n`);
    return { code: 1 };
  }
}
