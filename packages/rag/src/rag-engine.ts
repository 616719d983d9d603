import { composeExtractiveAnswer, type ExtractiveOptions } from './answer/extractive-answer.js';
import { type GroundedSentence, groundSentences, SUPPORT_THRESHOLD } from './answer/grounding.js';
import { type AnswerGenerator, parseGeneratedAnswer } from './answer/llm-answer.js';
import { scoreSourceSentences } from './answer/sentence-scorer.js';
import { type Source, toSources } from './answer/source.js';
import { type EmbeddingMap, type EmbeddingMapOptions, FittedMap } from './explain/embedding-map.js';
import { type KeywordOverlap, keywordOverlap } from './explain/keyword-overlap.js';
import { type SentenceHeatmap, sentenceHeatmaps } from './explain/sentence-heatmap.js';
import { type IndexReport, RagIndex, type RagIndexOptions } from './rag-index.js';
import { renderEmbeddingMapSvg, renderKeywordChipsSvg, renderSentenceHeatmapSvg } from './render/svg.js';
import type { HybridOptions } from './retrieval/search-hit.js';
import type { ProgressCallback } from './types.js';

/** Why the sources were retrieved: data and rendered SVG pictures. */
export interface RetrievalExplanation {
  /** Absent when the index has fewer than 3 chunks or `embeddingMap: false`. */
  readonly embeddingMap?: EmbeddingMap;
  readonly sentenceHeatmaps: readonly SentenceHeatmap[];
  readonly keywords: readonly KeywordOverlap[];
  readonly svg: {
    readonly embeddingMap?: string;
    readonly sentenceHeatmaps: readonly string[];
    readonly keywords: readonly string[];
  };
}

/** An answer with its sources, grounding per sentence and (optionally) the retrieval explanation. */
export interface RagAnswer {
  readonly question: string;
  readonly answer: string;
  /** `extractive` (offline) or the generator's name (`openai:gpt-4o-mini`). */
  readonly mode: string;
  readonly sentences: readonly GroundedSentence[];
  readonly sources: readonly Source[];
  /** True when every answer sentence is supported. */
  readonly grounded: boolean;
  readonly explanation?: RetrievalExplanation;
  readonly timings: { readonly retrieveMs: number; readonly answerMs: number; readonly explainMs: number };
}

/** Options of {@link RagEngine.ask}. */
export interface AskOptions {
  /** Number of sources; default 5. */
  readonly topK?: number;
  readonly hybrid?: HybridOptions;
  /** A language model; default: the engine's, else the extractive answer. */
  readonly generator?: AnswerGenerator;
  /** Compute the explanation; default true. `embeddingMap: false` skips the (slower) map. */
  readonly explain?: boolean | { readonly embeddingMap?: boolean };
  readonly extractive?: ExtractiveOptions;
  /** Support threshold of grounding; default 0.5. */
  readonly supportThreshold?: number;
}

/** Options of {@link RagEngine.open}. */
export interface RagEngineOptions extends RagIndexOptions {
  /** Default answer generator (LLM); without one, answers are extractive. */
  readonly generator?: AnswerGenerator;
  readonly embeddingMap?: EmbeddingMapOptions;
}

/**
 * The explainable RAG assistant: an index plus answers with sources, grounding and explanations.
 *
 * ```ts
 * const rag = await RagEngine.open({ dir: '.crp-rag' });
 * await rag.update('papers/');
 * const a = await rag.ask('What does the epsilon rule do?');
 * console.log(a.answer, a.sources.map((s) => s.citation));
 * ```
 */
export class RagEngine {
  readonly index: RagIndex;
  readonly #generator: AnswerGenerator | undefined;
  readonly #mapOptions: EmbeddingMapOptions;
  #map: { version: number; map: FittedMap } | undefined;

  private constructor(index: RagIndex, options: RagEngineOptions) {
    this.index = index;
    this.#generator = options.generator;
    this.#mapOptions = options.embeddingMap ?? {};
  }

  static async open(options: RagEngineOptions): Promise<RagEngine> {
    return new RagEngine(await RagIndex.open(options), options);
  }

  /** Incrementally (re)indexes a folder; see {@link RagIndex.update}. */
  update(sourceDir: string, options: { onProgress?: ProgressCallback } = {}): Promise<IndexReport> {
    return this.index.update(sourceDir, options);
  }

  /** The fitted embedding map of the current index content (fitted once per index version). */
  fittedMap(): FittedMap {
    if (!this.#map || this.#map.version !== this.index.version) {
      this.#map = { version: this.index.version, map: FittedMap.fit(this.index.vectors, this.#mapOptions) };
    }
    return this.#map.map;
  }

  /** Answers a question from the index, with sources, grounding and explanation. */
  async ask(question: string, options: AskOptions = {}): Promise<RagAnswer> {
    const t0 = performance.now();
    const index = this.index;
    const qv = await index.embedQuery(typeof question === 'string' ? question : '');
    const hits = await index.searchWithVector(question, qv, {
      topK: options.topK ?? 5,
      ...(options.hybrid ? { hybrid: options.hybrid } : {}),
    });
    const sources = toSources(hits);
    const t1 = performance.now();
    const scored = await scoreSourceSentences(question, qv, sources, index.embedding, index.bm25);
    const generator = options.generator ?? this.#generator;
    let composed: { text: string; sentences: { text: string; citations: number[] }[] };
    if (generator) composed = parseGeneratedAnswer(await generator.generate(question, sources), sources);
    else composed = composeExtractiveAnswer(scored, sources, options.extractive);
    const sentences = await groundSentences(
      composed.sentences,
      scored,
      index.embedding,
      options.supportThreshold ?? SUPPORT_THRESHOLD,
    );
    const t2 = performance.now();
    const explainOpt = options.explain ?? true;
    let explanation: RetrievalExplanation | undefined;
    if (explainOpt) {
      const heatmaps = sentenceHeatmaps(sources, scored);
      const keywords = sources.map((s) =>
        keywordOverlap(question, index.indexOf(s.chunkId) ?? -1, s.n, s.chunkId, index.bm25),
      );
      const wantMap = explainOpt === true || explainOpt.embeddingMap !== false;
      const map =
        wantMap && index.chunks.length >= 3
          ? this.fittedMap().project(
              index.chunks,
              index.vectors,
              qv,
              sources.map((s) => s.chunkId),
            )
          : undefined;
      explanation = {
        ...(map ? { embeddingMap: map } : {}),
        sentenceHeatmaps: heatmaps,
        keywords,
        svg: {
          ...(map ? { embeddingMap: renderEmbeddingMapSvg(map) } : {}),
          sentenceHeatmaps: heatmaps.map((h) => renderSentenceHeatmapSvg(h)),
          keywords: keywords.map((k) => renderKeywordChipsSvg(k)),
        },
      };
    }
    const t3 = performance.now();
    return {
      question,
      answer: composed.text,
      mode: generator?.name ?? 'extractive',
      sentences,
      sources,
      grounded: sentences.length > 0 && sentences.every((s) => s.supported),
      ...(explanation ? { explanation } : {}),
      timings: { retrieveMs: t1 - t0, answerMs: t2 - t1, explainMs: t3 - t2 },
    };
  }
}
