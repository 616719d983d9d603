import { CrpError, describeError } from '@crp/common';
import type { LLM } from '@llamaindex/core/llms';
import { type AnswerGenerator, buildPrompt, redact, SYSTEM_PROMPT } from '../answer/llm-answer.js';
import type { Source } from '../answer/source.js';
import type { Language } from '../types.js';
import { llamaCppGenerator } from './local-model.js';

/** LLM providers reachable through llamaindex adapters. Groq goes through the OpenAI adapter. */
export type LlmProviderName = 'openai' | 'groq' | 'ollama';

/** Options of {@link createLlmGenerator}. Keys are read from the environment only. */
export interface LlmOptions {
  readonly provider: LlmProviderName;
  /** Model name; default per provider: {@link DEFAULT_MODELS}. */
  readonly model?: string;
  /** Override of the API base URL (OpenAI-compatible servers, a local Ollama). */
  readonly baseURL?: string;
  /** Default 0 (answers should stick to the sources). */
  readonly temperature?: number;
  /** Default 60,000 ms. */
  readonly timeoutMs?: number;
  /** Where keys and `OLLAMA_HOST` / `OPENAI_BASE_URL` are read from; default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** Environment variable that holds each provider's key. */
export const API_KEY_ENV: Readonly<Record<LlmProviderName, string | undefined>> = {
  openai: 'OPENAI_API_KEY',
  groq: 'GROQ_API_KEY',
  ollama: undefined,
};

/** Model used when none is named. */
export const DEFAULT_MODELS: Readonly<Record<LlmProviderName, string>> = {
  groq: 'llama-3.1-8b-instant',
  openai: 'gpt-4o-mini',
  ollama: 'llama3.1',
};

export const GROQ_BASE_URL = 'https://api.groq.com/openai/v1';

/**
 * An {@link AnswerGenerator} over any llamaindex `LLM`, or over a function that makes one when it is first
 * needed (the adapters take seconds to import, which a plain extractive `ask` should not pay).
 */
export class LlamaIndexAnswerGenerator implements AnswerGenerator {
  readonly name: string;
  readonly #make: () => Promise<LLM>;
  #llm: Promise<LLM> | undefined;
  readonly #secrets: readonly (string | undefined)[];
  readonly #unreachableHint: string | undefined;
  /**
   * @param unreachableHint what a user should check when the model does not answer (where it was asked, how to
   *   start it or point elsewhere), added to an `unreachable` error
   */
  constructor(
    llm: LLM | (() => Promise<LLM>),
    name: string,
    secrets: readonly (string | undefined)[] = [],
    unreachableHint?: string,
  ) {
    this.#make = typeof llm === 'function' ? llm : () => Promise.resolve(llm);
    this.name = name;
    this.#secrets = secrets;
    this.#unreachableHint = unreachableHint;
  }
  #model(): Promise<LLM> {
    this.#llm ??= this.#make();
    return this.#llm;
  }
  async generate(question: string, sources: readonly Source[], language?: Language): Promise<string> {
    try {
      const res = await (await this.#model()).chat({ messages: messagesFor(question, sources, language) });
      const text = contentText(res.message.content);
      if (typeof text !== 'string') throw new Error('the answer has no text');
      return text;
    } catch (error) {
      throw this.#failure(error);
    }
  }

  async *stream(question: string, sources: readonly Source[], language?: Language): AsyncIterable<string> {
    try {
      const chunks = await (await this.#model()).chat({
        messages: messagesFor(question, sources, language),
        stream: true,
      });
      for await (const chunk of chunks) {
        if (typeof chunk?.delta !== 'string') throw new Error('a streamed piece has no text');
        if (chunk.delta) yield chunk.delta;
      }
    } catch (error) {
      throw this.#failure(error);
    }
  }

  #failure(error: unknown): CrpError {
    const message = redact(describeError(error), this.#secrets);
    const down = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|fetch failed|Connection error|timed? ?out/i.test(message);
    if (down)
      return new CrpError(
        'unreachable',
        `${this.name} did not answer (${message.replace(/\.$/, '')})${this.#unreachableHint ? `; ${this.#unreachableHint}` : ''}.`,
        { cause: error },
      );
    return new CrpError('provider-failed', `${this.name} failed: ${message}`, { cause: error });
  }
}

function messagesFor(question: string, sources: readonly Source[], language?: Language) {
  return [
    { role: 'system' as const, content: SYSTEM_PROMPT },
    { role: 'user' as const, content: buildPrompt(question, sources, language) },
  ];
}

function contentText(content: unknown): string | undefined {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return undefined;
  return content.map((p: { text?: unknown }) => (typeof p?.text === 'string' ? p.text : '')).join('');
}

/**
 * A generator for Groq (OpenAI adapter with Groq's base URL), OpenAI or Ollama through llamaindex. The API
 * key comes from `GROQ_API_KEY` / `OPENAI_API_KEY`; it is never logged, stored or put in errors.
 */
export function createLlmGenerator(options: LlmOptions): AnswerGenerator {
  const { provider } = options;
  const env = options.env ?? process.env;
  if (!['openai', 'groq', 'ollama'].includes(provider)) {
    throw new CrpError(
      'provider-config',
      `Unknown LLM provider "${String(provider)}"; valid: groq, openai, ollama.`,
    );
  }
  const model = options.model || DEFAULT_MODELS[provider];
  const temperature = options.temperature ?? 0;
  const timeout = options.timeoutMs ?? 60_000;
  if (provider === 'ollama') {
    const host = options.baseURL ?? env.OLLAMA_HOST ?? 'http://127.0.0.1:11434';
    const llm = async () => {
      const { Ollama } = await import('@llamaindex/ollama');
      return new Ollama({ model, config: { host }, options: { temperature } });
    };
    return new LlamaIndexAnswerGenerator(
      llm,
      `ollama:${model}`,
      [],
      `asked at ${host}: start Ollama there (\`ollama serve\`) or set OLLAMA_HOST to the address it listens on`,
    );
  }
  const envName = API_KEY_ENV[provider]!;
  const apiKey = env[envName];
  if (!apiKey) {
    throw new CrpError(
      'provider-config',
      `The ${provider} provider needs an API key in the environment variable ${envName}; it is read from there only.`,
    );
  }
  const baseURL =
    options.baseURL ?? (provider === 'groq' ? (env.GROQ_BASE_URL ?? GROQ_BASE_URL) : env.OPENAI_BASE_URL);
  const llm = async () => {
    const { OpenAI } = await import('@llamaindex/openai');
    return new OpenAI({
      model,
      apiKey,
      temperature,
      timeout,
      maxRetries: 1,
      ...(baseURL ? { baseURL } : {}),
    });
  };
  const where = baseURL ?? 'https://api.openai.com/v1';
  const setting = provider === 'groq' ? 'GROQ_BASE_URL' : 'OPENAI_BASE_URL';
  return new LlamaIndexAnswerGenerator(
    llm,
    `${provider}:${model}`,
    [apiKey],
    `asked at ${where}: check the network, or set ${setting} to the server's address`,
  );
}

/**
 * The generator to use when none is named: the spec in `CRP_RAG_LLM` (`ollama:llama3.1`,
 * `llama-cpp:/models/x.gguf`, `groq`, ... see `generatorFromSpec`), else Groq when `GROQ_API_KEY` is set (as
 * the seed app does), else none (extractive answers, offline).
 */
export function defaultGenerator(
  env: Readonly<Record<string, string | undefined>> = process.env,
): AnswerGenerator | undefined {
  if (env.CRP_RAG_LLM) return generatorFromSpec(env.CRP_RAG_LLM, env);
  return env.GROQ_API_KEY ? createLlmGenerator({ provider: 'groq', env }) : undefined;
}

/**
 * An answerer from a spec: `groq[:model]`, `openai[:model]`, `ollama[:model]` (a server on this machine,
 * `OLLAMA_HOST`), `llama-cpp:<file.gguf>` (node-llama-cpp with a model file you have), or `none` (undefined:
 * extractive answers).
 */
export function generatorFromSpec(
  spec: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): AnswerGenerator | undefined {
  if (spec === 'none' || spec === 'extractive') return undefined;
  const i = spec.indexOf(':');
  const provider = i < 0 ? spec : spec.slice(0, i);
  const rest = i < 0 ? undefined : spec.slice(i + 1);
  if (provider === 'llama-cpp') {
    if (!rest)
      throw new CrpError('invalid-argument', 'llama-cpp needs the model file: --llm llama-cpp:<file.gguf>.');
    return llamaCppGenerator(rest);
  }
  if (!['openai', 'groq', 'ollama'].includes(provider)) {
    throw new CrpError(
      'invalid-argument',
      `Unknown --llm "${spec}"; valid: groq[:model], openai[:model], ollama[:model], llama-cpp:<file.gguf>, none.`,
    );
  }
  return createLlmGenerator({ provider: provider as LlmProviderName, env, ...(rest ? { model: rest } : {}) });
}
