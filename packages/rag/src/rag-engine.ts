import {
  type AnswerSentence,
  type ComposedAnswer,
  composeExtractiveAnswer,
  type ExtractiveOptions,
} from './answer/extractive-answer.js';
import { type GroundedSentence, groundSentences, SUPPORT_THRESHOLD } from './answer/grounding.js';
import { type AnswerGenerator, parseGeneratedAnswer } from './answer/llm-answer.js';
import { asksForName, questionIntent, subjectAsWritten } from './answer/question-intent.js';
import { asksForCode, scoreSourceSentences } from './answer/sentence-scorer.js';
import { type Source, toSources } from './answer/source.js';
import { type EmbeddingMap, type EmbeddingMapOptions, FittedMap } from './explain/embedding-map.js';
import { type KeywordOverlap, keywordOverlap } from './explain/keyword-overlap.js';
import { MeaningSpace } from './explain/meaning-space.js';
import { type SentenceHeatmap, sentenceHeatmaps } from './explain/sentence-heatmap.js';
import { chunkContextText, type RagIndex } from './rag-index.js';
import { renderEmbeddingMapSvg, renderKeywordChipsSvg, renderSentenceHeatmapSvg } from './render/svg.js';
import type { Bm25Index } from './retrieval/bm25.js';
import type { HybridOptions } from './retrieval/search-hit.js';
import { tagTerm } from './text/analyzer.js';
import { detectLanguage } from './text/language.js';
import { chunkWordUsage, glossSentence, type TermUsage, type WordUsage } from './translate/gloss.js';
import type { QueryTranslator } from './translate/query-translator.js';
import type { Chunk, Language } from './types.js';

// the words the index's chunks use, counted on the first gloss of a set of chunks (an update makes a new one;
// 0.1 s for the evaluation corpus's 1,245 chunks)
const chunkWordUsages = new WeakMap<readonly Chunk[], WordUsage>();
function cachedChunkWordUsage(chunks: readonly Chunk[]): WordUsage {
  const known = chunkWordUsages.get(chunks);
  if (known) return known;
  const usage = chunkWordUsage(chunks);
  chunkWordUsages.set(chunks, usage);
  return usage;
}

/**
 * Adds to each quoted sentence in the other language than the question's its word-by-word gloss from the
 * dictionary (without a dictionary, or when the gloss would add nothing, the quotation stays as it is), in the
 * senses the index's chunks use (`TermUsage`: document frequencies of the language's index terms; `WordUsage`: of
 * their words as written, so a sense their English never says is not shown).
 */
function withGlosses(
  composed: ComposedAnswer,
  sources: readonly Source[],
  language: Language,
  translator: QueryTranslator | undefined,
  bm25: Bm25Index,
  chunks: readonly Chunk[],
): ComposedAnswer {
  if (!translator) return composed;
  const usage: TermUsage = (stem, lang) => bm25.documentFrequency(tagTerm(lang, stem));
  const sentences = composed.sentences.map((s) => {
    const from = s.quote ? sources[s.quote.source - 1]?.language : undefined;
    // code reads alike in either language: a gloss of its lines ("import torch [Fackel]") would only mislead
    if (!from || from === language || s.kind === 'code') return s;
    const src = sources[s.quote!.source - 1]!;
    const text = s.text.replace(src.citation, '').trim();
    const gloss = glossSentence(text, from, translator, usage, cachedChunkWordUsage(chunks));
    // a gloss that adds nothing (only names and words both languages write alike) is not shown
    return gloss === text ? s : { ...s, gloss };
  });
  return { ...composed, sentences };
}

/** The languages of the quoted sources, first quoted first: prose, else code (see `RagAnswer.quotedLanguages`). */
export function quotedLanguagesOf(
  sentences: readonly Pick<AnswerSentence, 'kind' | 'quote'>[],
  sources: readonly Pick<Source, 'language'>[],
): Language[] {
  const of = (code: boolean) => [
    ...new Set(
      sentences
        .filter((s) => s.quote && (s.kind === 'code') === code)
        .flatMap((s) => sources[s.quote!.source - 1]?.language ?? []),
    ),
  ];
  const prose = of(false);
  return prose.length ? prose : of(true);
}

/** What an answer to "What is X?" says before quoting a sentence that uses X without defining it. */
function noDefinitionNote(name: string, language: Language): string {
  return language === 'de'
    ? `Keine Quelle definiert ${name}; die Stelle, die am meisten darüber sagt:`
    : `No source defines ${name}; the passage that says most about it:`;
}

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
  /** Detected language of the question. */
  readonly questionLanguage: Language;
  /**
   * The answer as plain text with its citations: prose sentences joined by spaces, a code block (`sentences` of kind
   * `code`) a paragraph of its own lines, as its source has them.
   */
  readonly answer: string;
  /** Language of the answer text (an extractive answer is in its sources' language). */
  readonly language: Language;
  /**
   * Languages of the sources an extractive answer quotes, in the order first quoted (its prose; code, which reads
   * alike in either language, only when it quotes nothing else). Two when it quotes an English and a German
   * passage: `language` then names only the one its words mostly are. Absent when nothing is quoted (a model's
   * answer, no answer).
   */
  readonly quotedLanguages?: readonly Language[];
  /** `extractive` (offline) or the generator's name (`groq:llama-3.1-8b-instant`). */
  readonly mode: string;
  readonly sentences: readonly GroundedSentence[];
  readonly sources: readonly Source[];
  /** True when no sentence is `unsupported` (quotations, supported sentences and sentences without a claim). */
  readonly grounded: boolean;
  /**
   * Said before the answer, in the question's language, when the answer is not what was asked: for a question that
   * asks only what a name is ("What is CRP?") and no source defines it, "No source defines CRP; the passage that
   * says most about it:" (the quotation that follows uses the name; it is not a definition). Extractive answers only.
   */
  readonly note?: string;
  readonly explanation?: RetrievalExplanation;
  readonly timings: { readonly retrieveMs: number; readonly answerMs: number; readonly explainMs: number };
}

/** Options of {@link RagEngine.ask}. */
export interface AskOptions {
  /** Number of sources; default 5. */
  readonly topK?: number;
  readonly hybrid?: HybridOptions;
  /** A language model; default: the engine's, else the extractive answer. `null`: extractive. */
  readonly generator?: AnswerGenerator | null;
  /** Compute the explanation; default true. `embeddingMap: false` skips the (slower) map. */
  readonly explain?: boolean | { readonly embeddingMap?: boolean };
  readonly extractive?: ExtractiveOptions;
  /** Support threshold of grounding; default 0.5. */
  readonly supportThreshold?: number;
  /** Called with each piece of a generated answer as the model writes it (when the generator streams). */
  readonly onToken?: (text: string) => void;
}

/** Options of a {@link RagEngine}. */
export interface RagEngineOptions {
  /** Default answer generator (a language model); without one, answers are extractive. */
  readonly generator?: AnswerGenerator | null;
  readonly embeddingMap?: EmbeddingMapOptions;
}

/**
 * The explainable RAG assistant over an index: answers with sources, grounding and explanations. Runs
 * anywhere (a browser too) over an in-memory {@link RagIndex}; `@crp/rag/node`'s `RagEngine.open` adds the
 * index folder on disk, folder indexing, PDF and Chroma.
 *
 * ```ts
 * const engine = new RagEngine(new RagIndex({ embedding: new HashEmbedding() }));
 * await engine.index.updateFiles([{ file: 'notes.md', bytes: new TextEncoder().encode('# Notes\n...') }]);
 * const a = await engine.ask('What does the epsilon rule do?');
 * ```
 */
export class RagEngine {
  readonly index: RagIndex;
  readonly generator: AnswerGenerator | undefined;
  readonly #mapOptions: EmbeddingMapOptions;
  #map: { version: number; map: FittedMap; space: MeaningSpace | undefined } | undefined;

  constructor(index: RagIndex, options: RagEngineOptions = {}) {
    this.index = index;
    this.generator = options.generator ?? undefined;
    this.#mapOptions = options.embeddingMap ?? {};
  }

  /** The fitted embedding map of the current index content (fitted once per index version). */
  fittedMap(): FittedMap {
    return this.#fitted().map;
  }

  #fitted(): { map: FittedMap; space: MeaningSpace | undefined } {
    const index = this.index;
    if (!this.#map || this.#map.version !== index.version) {
      const space =
        (this.#mapOptions.space ?? 'meaning') === 'meaning'
          ? MeaningSpace.ofTexts(
              index.chunks.map((c) => ({
                text: chunkContextText(c),
                language: c.metadata.language,
                document: c.metadata.file,
              })),
              index.translator,
            )
          : undefined;
      const map = FittedMap.fit(
        space ? space.vectors : index.vectors,
        this.#mapOptions,
        index.chunks.map((c) => c.metadata.language),
        space ? (indices) => space.similarities(indices) : undefined,
        index.chunks.map((c) => c.metadata.file),
      );
      this.#map = { version: index.version, map, space };
    }
    return this.#map;
  }

  /** Answers a question from the index, with sources, grounding and explanation. */
  async ask(question: string, options: AskOptions = {}): Promise<RagAnswer> {
    const t0 = performance.now();
    const index = this.index;
    index.checkQuestion(question);
    const qv = await index.embedQuery(question);
    const found = await index.searchWithVector(question, qv, {
      topK: options.topK ?? 5,
      ...(options.hybrid ? { hybrid: options.hybrid } : {}),
    });
    // the sources are numbered in the retrieval's order before the answer re-ranking: that chose which chunks of a
    // document are shown, not how much the answer trusts each (its source-rank prior); numbered by the re-ranked
    // order, 6 tuning answers were lost (other sources quoted), numbered so, none
    const reranked = found.filter((h) => h.passageScore !== undefined);
    const hits = [
      ...reranked.sort(
        (a, b) =>
          b.passageScore! - a.passageScore! ||
          (index.indexOf(a.chunk.id) ?? 0) - (index.indexOf(b.chunk.id) ?? 0),
      ),
      ...found.filter((h) => h.passageScore === undefined),
    ];
    const query = index.analyzeQuestion(question);
    const sources = toSources(hits);
    const t1 = performance.now();
    const intent = questionIntent(question);
    const scored = await scoreSourceSentences(
      question,
      qv,
      query,
      sources,
      index.sentenceEmbedding,
      index.bm25,
      intent,
      index.translator,
    );
    const generator = options.generator === null ? undefined : (options.generator ?? this.generator);
    let composed: ComposedAnswer;
    if (generator) {
      let text = '';
      if (options.onToken && generator.stream) {
        for await (const piece of generator.stream(question, sources, query.language)) {
          text += piece;
          options.onToken(piece);
        }
      } else text = await generator.generate(question, sources, query.language);
      composed = parseGeneratedAnswer(text, sources);
    }
    // every generated sentence is checked against the sources below (grounding), streamed or not
    else
      composed = withGlosses(
        composeExtractiveAnswer(scored, sources, {
          allowCode: asksForCode(question),
          intent,
          ...(asksForName(intent, query.concepts.length) ? { name: subjectAsWritten(question, intent) } : {}),
          ...options.extractive,
        }),
        sources,
        query.language,
        index.translator,
        index.bm25,
        index.chunks,
      );
    const sentences = await groundSentences(composed.sentences, scored, {
      embedding: index.sentenceEmbedding,
      bm25: index.bm25,
      sources,
      ...(index.translator ? { translator: index.translator } : {}),
      threshold: options.supportThreshold ?? SUPPORT_THRESHOLD,
    });
    const t2 = performance.now();
    const explainOpt = options.explain ?? true;
    let explanation: RetrievalExplanation | undefined;
    if (explainOpt) {
      const heatmaps = sentenceHeatmaps(sources, scored);
      const keywords = sources.map((s) =>
        keywordOverlap(query, index.indexOf(s.chunkId) ?? -1, s.n, s.chunkId, index.bm25),
      );
      const wantMap = explainOpt === true || explainOpt.embeddingMap !== false;
      let map: EmbeddingMap | undefined;
      if (wantMap && index.chunks.length >= 3) {
        const { map: fitted, space } = this.#fitted();
        map = space
          ? fitted.project(
              index.chunks,
              space.vectors,
              space.embedQuery(query),
              sources.map((s) => s.chunkId),
              space.questionVectors,
            )
          : fitted.project(
              index.chunks,
              index.vectors,
              qv,
              sources.map((s) => s.chunkId),
            );
      }
      explanation = {
        ...(map ? { embeddingMap: map } : {}),
        sentenceHeatmaps: heatmaps,
        keywords,
        svg: {
          ...(map ? { embeddingMap: renderEmbeddingMapSvg(map) } : {}),
          sentenceHeatmaps: heatmaps.map((h) => renderSentenceHeatmapSvg(h)),
          // rows wrap within a phone's width, so a narrow page never shrinks the chips' text (at 640: 7-9 px)
          keywords: keywords.map((k) => renderKeywordChipsSvg(k, { width: 360 })),
        },
      };
    }
    const t3 = performance.now();
    const answerText = composed.sentences.map((s) => s.text).join(' ');
    const quotedLanguages = quotedLanguagesOf(composed.sentences, sources);
    return {
      question,
      questionLanguage: query.language,
      answer: composed.text,
      language: answerText ? detectLanguage(answerText) : query.language,
      ...(quotedLanguages.length ? { quotedLanguages } : {}),
      mode: generator?.name ?? 'extractive',
      sentences,
      sources,
      grounded: sentences.length > 0 && sentences.every((s) => s.supported),
      ...(composed.undefinedName !== undefined && sentences.length > 0
        ? { note: noDefinitionNote(composed.undefinedName, query.language) }
        : {}),
      ...(explanation ? { explanation } : {}),
      timings: { retrieveMs: t1 - t0, answerMs: t2 - t1, explainMs: t3 - t2 },
    };
  }
}
