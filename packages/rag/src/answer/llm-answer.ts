import type { LLM } from '@llamaindex/core/llms';
import { Ollama } from '@llamaindex/ollama';
import { OpenAI } from '@llamaindex/openai';
import { describeError, RagError } from '../errors.js';
import { splitSentences } from '../text/sentences.js';
import type { Source } from './source.js';

/** Writes an answer from numbered sources; implementations call a language model. */
export interface AnswerGenerator {
  /** Shown as the answer's `mode` (e.g. `openai:gpt-4o-mini`). */
  readonly name: string;
  /** The answer text, citing sources as `[n]`. */
  generate(question: string, sources: readonly Source[]): Promise<string>;
}

/** LLM providers reachable through llamaindex adapters. Groq goes through the OpenAI adapter. */
export type LlmProviderName = 'openai' | 'groq' | 'ollama';

/** Options of {@link createLlmGenerator}. Keys are read from the environment only. */
export interface LlmOptions {
  readonly provider: LlmProviderName;
  readonly model: string;
  /** Override of the API base URL (OpenAI-compatible servers, a local Ollama). */
  readonly baseURL?: string;
  /** Default 0 (answers should stick to the sources). */
  readonly temperature?: number;
  /** Default 60,000 ms. */
  readonly timeoutMs?: number;
}

/** Environment variable that holds each provider's key. */
export const API_KEY_ENV: Readonly<Record<LlmProviderName, string | undefined>> = {
  openai: 'OPENAI_API_KEY',
  groq: 'GROQ_API_KEY',
  ollama: undefined,
};

export const GROQ_BASE_URL = 'https://api.groq.com/openai/v1';

const SYSTEM_PROMPT =
  'You answer questions using only the numbered sources you are given. After every sentence, cite the ' +
  'sources it relies on as [n]. If the sources do not contain the answer, say that they do not. Be brief.';

/** The user message: numbered sources, then the question. */
export function buildPrompt(question: string, sources: readonly Source[]): string {
  const blocks = sources.map((s) => `[${s.n}] ${s.citation} ${s.title}\n${s.text}`);
  return `Sources:\n\n${blocks.join('\n\n')}\n\nQuestion: ${question}`;
}

/** Replaces every occurrence of each secret in a text by `***`. */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('***');
  return out;
}

/** An {@link AnswerGenerator} over any llamaindex `LLM`. */
export class LlamaIndexAnswerGenerator implements AnswerGenerator {
  readonly name: string;
  readonly #llm: LLM;
  readonly #secrets: readonly (string | undefined)[];
  constructor(llm: LLM, name: string, secrets: readonly (string | undefined)[] = []) {
    this.#llm = llm;
    this.name = name;
    this.#secrets = secrets;
  }
  async generate(question: string, sources: readonly Source[]): Promise<string> {
    try {
      const res = await this.#llm.chat({
        messages: [
          { role: 'system', content: SYSTEM_PROMPT },
          { role: 'user', content: buildPrompt(question, sources) },
        ],
      });
      const content = res.message.content;
      return typeof content === 'string'
        ? content
        : content.map((p) => ('text' in p && typeof p.text === 'string' ? p.text : '')).join('');
    } catch (error) {
      throw new RagError(
        'PROVIDER_FAILED',
        `${this.name} failed: ${redact(describeError(error), this.#secrets)}`,
      );
    }
  }
}

/**
 * A generator for OpenAI, Groq (OpenAI adapter with Groq's base URL) or Ollama through llamaindex.
 * The API key comes from `OPENAI_API_KEY` / `GROQ_API_KEY`; it is never logged, stored or put in errors.
 */
export function createLlmGenerator(options: LlmOptions): AnswerGenerator {
  const { provider, model } = options;
  if (!['openai', 'groq', 'ollama'].includes(provider)) {
    throw new RagError(
      'PROVIDER_CONFIG',
      `Unknown LLM provider "${String(provider)}"; valid: openai, groq, ollama.`,
    );
  }
  if (!model) throw new RagError('PROVIDER_CONFIG', `The ${provider} provider needs a model name.`);
  const temperature = options.temperature ?? 0;
  const timeout = options.timeoutMs ?? 60_000;
  if (provider === 'ollama') {
    const host = options.baseURL ?? process.env.OLLAMA_HOST ?? 'http://127.0.0.1:11434';
    const llm = new Ollama({ model, config: { host }, options: { temperature } });
    return new LlamaIndexAnswerGenerator(llm, `ollama:${model}`);
  }
  const envName = API_KEY_ENV[provider]!;
  const apiKey = process.env[envName];
  if (!apiKey) {
    throw new RagError(
      'PROVIDER_CONFIG',
      `The ${provider} provider needs an API key in the environment variable ${envName}; it is read from there only.`,
    );
  }
  const baseURL = options.baseURL ?? (provider === 'groq' ? GROQ_BASE_URL : process.env.OPENAI_BASE_URL);
  const llm = new OpenAI({
    model,
    apiKey,
    temperature,
    timeout,
    maxRetries: 1,
    ...(baseURL ? { baseURL } : {}),
  });
  return new LlamaIndexAnswerGenerator(llm, `${provider}:${model}`, [apiKey]);
}

/**
 * Splits a generated answer into sentences with the `[n]` sources each cites, and rewrites `[n]` as the
 * source's `[file, p. N]` citation. Citations of unknown sources are dropped.
 */
export function parseGeneratedAnswer(
  text: string,
  sources: readonly Source[],
): { text: string; sentences: { text: string; citations: number[] }[] } {
  // "Sentence. [1]" -> "Sentence [1]." so the mark stays with its sentence
  const moved = text.trim().replace(/([.!?])\s*((?:\[\d+(?:\s*,\s*\d+)*\]\s*)+)/g, ' $2$1 ');
  const sentences = splitSentences(moved).map((s) => {
    const citations: number[] = [];
    const rewritten = s.text.replace(/\[(\d+(?:\s*,\s*\d+)*)\]/g, (_m, list: string) => {
      const marks = list
        .split(',')
        .map((x) => Number(x.trim()))
        .filter((n) => n >= 1 && n <= sources.length);
      citations.push(...marks);
      return marks.map((n) => sources[n - 1]!.citation).join(' ');
    });
    return { text: rewritten.replace(/\s+([.!?])/g, '$1').trim(), citations: [...new Set(citations)] };
  });
  return { text: sentences.map((s) => s.text).join(' '), sentences };
}
