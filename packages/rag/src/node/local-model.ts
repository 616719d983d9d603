import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { CrpError, describeError } from '@crp/common';
import { type AnswerGenerator, buildPrompt, SYSTEM_PROMPT } from '../answer/llm-answer.js';
import type { Source } from '../answer/source.js';
import type { Language } from '../types.js';

/**
 * A language model that runs in this process (node-llama-cpp with a GGUF file, or a fake in tests): one
 * system and one user message in, the answer out, each piece passed to `onText` as it is written.
 */
export interface LocalCompletionModel {
  readonly name: string;
  complete(system: string, user: string, onText?: (text: string) => void): Promise<string>;
  dispose?(): Promise<void>;
}

/** An {@link AnswerGenerator} over a {@link LocalCompletionModel} (opened on first use). */
export class LocalModelAnswerGenerator implements AnswerGenerator {
  readonly name: string;
  readonly #open: () => Promise<LocalCompletionModel>;
  #model: Promise<LocalCompletionModel> | undefined;

  constructor(name: string, open: () => Promise<LocalCompletionModel>) {
    this.name = name;
    this.#open = open;
  }

  #get(): Promise<LocalCompletionModel> {
    this.#model ??= this.#open().catch((error: unknown) => {
      this.#model = undefined;
      throw error;
    });
    return this.#model;
  }

  async generate(question: string, sources: readonly Source[], language?: Language): Promise<string> {
    const model = await this.#get();
    return this.#run(() => model.complete(SYSTEM_PROMPT, buildPrompt(question, sources, language)));
  }

  async *stream(question: string, sources: readonly Source[], language?: Language): AsyncIterable<string> {
    const model = await this.#get();
    // the model calls back with pieces; hand them out as they come
    const pieces: string[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    let failure: unknown;
    const done = this.#run(() =>
      model.complete(SYSTEM_PROMPT, buildPrompt(question, sources, language), (t) => {
        pieces.push(t);
        wake?.();
      }),
    ).then(
      () => {
        finished = true;
        wake?.();
      },
      (error: unknown) => {
        failure = error;
        finished = true;
        wake?.();
      },
    );
    while (!finished || pieces.length > 0) {
      if (pieces.length === 0) await new Promise<void>((r) => (wake = r));
      wake = undefined;
      while (pieces.length > 0) yield pieces.shift()!;
    }
    await done;
    if (failure) throw failure;
  }

  async #run(call: () => Promise<string>): Promise<string> {
    try {
      const text = await call();
      if (typeof text !== 'string') throw new Error('the model returned no text');
      return text;
    } catch (error) {
      if (error instanceof CrpError) throw error;
      throw new CrpError('provider-failed', `${this.name} failed: ${describeError(error)}`, { cause: error });
    }
  }

  /** Frees the model, if it was opened. */
  async dispose(): Promise<void> {
    const m = this.#model;
    this.#model = undefined;
    await (await m?.catch(() => undefined))?.dispose?.();
  }
}

/**
 * An answerer over node-llama-cpp and a GGUF model file the user has (the project downloads no model).
 * The file is checked now (`not-found`, `invalid-argument`); node-llama-cpp is an optional package loaded on
 * the first answer (`provider-config` with the install command when it is missing).
 */
export function llamaCppGenerator(file: string): LocalModelAnswerGenerator {
  const modelPath = path.resolve(file);
  if (!existsSync(modelPath) || !statSync(modelPath).isFile()) {
    throw new CrpError(
      'not-found',
      `The GGUF model file ${modelPath} does not exist; name a .gguf file you have.`,
      {
        details: { path: modelPath },
      },
    );
  }
  if (!/\.gguf$/i.test(modelPath)) {
    throw new CrpError(
      'invalid-argument',
      `${modelPath} is not a .gguf file; node-llama-cpp reads GGUF models.`,
    );
  }
  return new LocalModelAnswerGenerator(`llama-cpp:${path.basename(modelPath)}`, () =>
    openLlamaCpp(modelPath),
  );
}

/**
 * The part of node-llama-cpp (v3, checked against 3.22.1's types by a test) that the adapter calls; the
 * package is an optional peer dependency, so it is typed here by hand.
 */
export interface NodeLlamaCppApi {
  getLlama(options: {
    build: 'never';
  }): Promise<{ loadModel(o: { modelPath: string }): Promise<LlamaModelLike> }>;
  LlamaChatSession: new (o: {
    contextSequence: never;
    systemPrompt?: string;
  }) => {
    prompt(text: string, o?: { onTextChunk?: (t: string) => void }): Promise<string>;
  };
}
interface LlamaModelLike {
  createContext(): Promise<{ getSequence(): unknown; dispose(): Promise<void> }>;
  dispose(): Promise<void>;
}

async function openLlamaCpp(modelPath: string): Promise<LocalCompletionModel> {
  let lib: NodeLlamaCppApi;
  const name = 'node-llama-cpp';
  try {
    lib = (await import(name)) as NodeLlamaCppApi;
  } catch (error) {
    throw new CrpError(
      'provider-config',
      `llama-cpp answers need the optional package node-llama-cpp: npm install node-llama-cpp (${describeError(error)}).`,
      { cause: error },
    );
  }
  let llama: Awaited<ReturnType<NodeLlamaCppApi['getLlama']>>;
  try {
    // prebuilt binaries only (the npm packages @node-llama-cpp/<platform>): with its default, node-llama-cpp
    // would clone llama.cpp from GitHub and compile it when no prebuilt binary loads
    llama = await lib.getLlama({ build: 'never' });
  } catch (error) {
    throw new CrpError(
      'provider-config',
      `node-llama-cpp has no prebuilt binary that loads on ${process.platform}-${process.arch} (${describeError(error)}); reinstall it with its optional dependencies, or build it yourself: npx --no node-llama-cpp source build.`,
      { cause: error },
    );
  }
  let model: LlamaModelLike;
  try {
    model = await llama.loadModel({ modelPath });
  } catch (error) {
    throw new CrpError(
      'corrupt-file',
      `node-llama-cpp could not load ${modelPath} as a GGUF model (${describeError(error)}); name a complete .gguf model file.`,
      { cause: error, details: { path: modelPath } },
    );
  }
  return {
    name: path.basename(modelPath),
    async complete(system, user, onText) {
      // a fresh context per answer: answers do not see each other
      const context = await model.createContext();
      try {
        const session = new lib.LlamaChatSession({
          contextSequence: context.getSequence() as never,
          systemPrompt: system,
        });
        return await session.prompt(user, onText ? { onTextChunk: onText } : {});
      } finally {
        await context.dispose();
      }
    },
    dispose: () => model.dispose(),
  };
}
