import type { QueryConcept } from '../text/query.js';

/** Parameters of Okapi BM25. */
export interface Bm25Options {
  /** Term-frequency saturation; default 1.2. */
  readonly k1?: number;
  /** Length normalisation; default 0.75. */
  readonly b?: number;
}

/** A document and its score. */
export interface Bm25Hit {
  readonly doc: number;
  readonly score: number;
}

/** How one query concept matched one document. */
export interface ConceptMatch {
  /** What the concept added to the document's score. */
  readonly score: number;
  /** Weighted frequency of the concept's terms in the document. */
  readonly tf: number;
  /** IDF of the concept (from the documents that contain any of its terms). */
  readonly idf: number;
  /** The concept's terms found in the document. */
  readonly matched: readonly string[];
}

/** Documents as term ids: `chunks[d]` lists the ids of document d's terms, `vocabulary[id]` is the term. */
export interface TermIds {
  readonly vocabulary: readonly string[];
  readonly chunks: readonly (readonly number[] | Int32Array)[];
  /** The inverted lists of these chunks as an index file holds them; counted when absent. */
  readonly postings?: TermPostings;
}

/**
 * The inverted lists of documents given as term ids: the documents that contain term `id` are
 * `docs[offsets[id]]` .. `docs[offsets[id + 1] - 1]`, in ascending order, with the term's frequency in each at
 * the same places of `tfs`.
 */
export interface TermPostings {
  readonly offsets: Int32Array;
  readonly docs: Int32Array;
  readonly tfs: Int32Array;
}

/** Counts the inverted lists of documents given as term ids into a vocabulary of `vocabularySize` terms. */
export function termPostings(vocabularySize: number, chunks: TermIds['chunks']): TermPostings {
  // two passes over typed arrays (no array per term while counting): document frequencies, then the
  // postings of all terms in one buffer, each term's slice in ascending document order
  const count = new Int32Array(vocabularySize);
  const df = new Int32Array(vocabularySize + 1);
  // indexed loops: the ids are views of an index file's bytes, and for-of over typed arrays is slower
  for (const ids of chunks) {
    for (let k = 0; k < ids.length; k++) if (count[ids[k]!]!++ === 0) df[ids[k]!]!++;
    for (let k = 0; k < ids.length; k++) count[ids[k]!] = 0;
  }
  const offsets = new Int32Array(vocabularySize + 1);
  for (let id = 0; id < vocabularySize; id++) offsets[id + 1] = offsets[id]! + df[id]!;
  const docs = new Int32Array(offsets[vocabularySize]!);
  const tfs = new Int32Array(docs.length);
  const fill = offsets.slice(0, vocabularySize);
  chunks.forEach((ids, d) => {
    for (let k = 0; k < ids.length; k++) count[ids[k]!]!++;
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k]!;
      if (count[id] === 0) continue;
      docs[fill[id]!] = d;
      tfs[fill[id]!++] = count[id]!;
      count[id] = 0;
    }
  });
  return { offsets, docs, tfs };
}

interface Posting {
  readonly docs: { readonly length: number; readonly [i: number]: number };
  readonly tfs: { readonly length: number; readonly [i: number]: number };
}

/**
 * Okapi BM25 over documents given as term lists (see `analyze`), queried with {@link QueryConcept}s: the
 * terms of a concept are synonyms (Pirkola's structured query), so a document's frequency of the concept is
 * the weighted sum of its terms' frequencies and its document frequency counts documents with any of them.
 * A word and its translations thus count once, however many of them a document contains.
 */
export class Bm25Index {
  readonly k1: number;
  readonly b: number;
  readonly #postings = new Map<string, Posting>();
  readonly #lengths: Float64Array;
  readonly #avgLength: number = 0;

  /**
   * @param documents the terms of each document, or the documents as term ids into a vocabulary (as an index
   *   saves them): counted with integer tables instead of a map per document, which opens a large index faster
   * @param lengths length of each document for the length normalisation; default the number of its terms
   *   (pass fewer where some terms are extra forms of the same word, such as the parts of a compound)
   */
  constructor(
    documents: readonly (readonly string[])[] | TermIds,
    options: Bm25Options = {},
    lengths?: ArrayLike<number>,
  ) {
    this.k1 = options.k1 ?? 1.2;
    this.b = options.b ?? 0.75;
    if (!Array.isArray(documents)) {
      const { vocabulary, chunks, postings } = documents as TermIds;
      this.#lengths = Float64Array.from(chunks, (ids, d) => lengths?.[d] ?? ids.length);
      this.#avgLength = chunks.length ? this.#lengths.reduce((a, b) => a + b, 0) / chunks.length : 0;
      this.#postingsFromIds(vocabulary, chunks, postings);
      return;
    }
    this.#lengths = new Float64Array(documents.length);
    const growing = new Map<string, { docs: number[]; tfs: number[] }>();
    let total = 0;
    (documents as readonly (readonly string[])[]).forEach((terms, d) => {
      const length = lengths?.[d] ?? terms.length;
      this.#lengths[d] = length;
      total += length;
      const tf = new Map<string, number>();
      for (const t of terms) tf.set(t, (tf.get(t) ?? 0) + 1);
      for (const [t, n] of tf) {
        let p = growing.get(t);
        if (!p) {
          p = { docs: [], tfs: [] };
          growing.set(t, p);
          this.#postings.set(t, p);
        }
        p.docs.push(d);
        p.tfs.push(n);
      }
    });
    this.#avgLength = documents.length ? total / documents.length : 0;
  }

  #postingsFromIds(vocabulary: readonly string[], chunks: TermIds['chunks'], saved?: TermPostings): void {
    // an index file holds them: opening a 10,000-chunk index counted them for ~60 ms
    const { offsets, docs, tfs } = saved ?? termPostings(vocabulary.length, chunks);
    // vocabulary ids are numbered in order of first occurrence, so the map's order matches the string path's
    vocabulary.forEach((term, id) => {
      const from = offsets[id]!;
      const to = offsets[id + 1]!;
      if (to > from) this.#postings.set(term, { docs: docs.subarray(from, to), tfs: tfs.subarray(from, to) });
    });
  }

  /** Number of documents. */
  get size(): number {
    return this.#lengths.length;
  }

  /** Documents that contain a term. */
  documentFrequency(term: string): number {
    return this.#postings.get(term)?.docs.length ?? 0;
  }

  #idfOf(df: number): number {
    return df === 0 ? 0 : Math.log(1 + (this.size - df + 0.5) / (df + 0.5));
  }

  /** Inverse document frequency (never negative); 0 for unknown terms. */
  idf(term: string): number {
    return this.#idfOf(this.documentFrequency(term));
  }

  #saturate(tf: number, doc: number): number {
    const norm = this.k1 * (1 - this.b + (this.b * (this.#lengths[doc] ?? 0)) / (this.#avgLength || 1));
    return (tf * (this.k1 + 1)) / (tf + norm);
  }

  /** What one term adds to a document's score given its frequency there. */
  termScore(term: string, doc: number, tf: number): number {
    return tf <= 0 ? 0 : this.idf(term) * this.#saturate(tf, doc);
  }

  /** Frequency of a term in a document. */
  termFrequency(term: string, doc: number): number {
    const p = this.#postings.get(term);
    if (!p) return 0;
    // postings are in ascending doc order
    let lo = 0;
    let hi = p.docs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const d = p.docs[mid]!;
      if (d === doc) return p.tfs[mid]!;
      if (d < doc) lo = mid + 1;
      else hi = mid - 1;
    }
    return 0;
  }

  /** Weighted frequency of every document that contains one of the concept's terms. */
  #conceptFrequencies(concept: QueryConcept): Map<number, number> {
    const tf = new Map<number, number>();
    for (const { term, weight } of concept.terms) {
      const p = this.#postings.get(term);
      if (!p) continue;
      for (let i = 0; i < p.docs.length; i++) {
        const d = p.docs[i]!;
        tf.set(d, (tf.get(d) ?? 0) + weight * p.tfs[i]!);
      }
    }
    return tf;
  }

  /** Scores of all documents for a query of concepts; `scores[doc]`, 0 where nothing matched. */
  scoreConcepts(concepts: readonly QueryConcept[]): Float64Array {
    const scores = new Float64Array(this.size);
    for (const c of concepts) {
      const tf = this.#conceptFrequencies(c);
      const idf = this.#idfOf(tf.size);
      for (const [d, f] of tf) scores[d] = scores[d]! + idf * this.#saturate(f, d);
    }
    return scores;
  }

  /** How one concept matched one document (for explanations); undefined when it did not. */
  conceptMatch(concept: QueryConcept, doc: number): ConceptMatch | undefined {
    let tf = 0;
    const matched: string[] = [];
    for (const { term, weight } of concept.terms) {
      const f = this.termFrequency(term, doc);
      if (f > 0) {
        tf += weight * f;
        matched.push(term);
      }
    }
    if (tf === 0) return undefined;
    const idf = this.#idfOf(this.#conceptFrequencies(concept).size);
    return { score: idf * this.#saturate(tf, doc), tf, idf, matched };
  }

  /** IDF of a concept: from the documents that contain any of its terms (0 when none does). */
  conceptIdf(concept: QueryConcept): number {
    return this.#idfOf(this.#conceptFrequencies(concept).size);
  }

  /**
   * Like {@link conceptIdf}, but a concept that no document contains gets the highest IDF there can be
   * (document frequency 0): for checking a claim, a word the corpus never uses is the strongest signal.
   */
  conceptRarity(concept: QueryConcept): number {
    const df = this.#conceptFrequencies(concept).size;
    return Math.log(1 + (this.size - df + 0.5) / (df + 0.5));
  }

  /** Scores of all documents for plain terms (each distinct term its own concept). */
  scoreAll(queryTerms: readonly string[]): Float64Array {
    return this.scoreConcepts(
      [...new Set(queryTerms)].map((term) => ({
        word: term,
        start: 0,
        end: 0,
        terms: [{ term, weight: 1, via: 'word', language: 'en' }],
      })),
    );
  }

  /** The `k` best documents for the query terms, best first (only documents with a score above 0). */
  search(queryTerms: readonly string[], k: number): Bm25Hit[] {
    return topK(this.scoreAll(queryTerms), k, 0);
  }
}

/** Indices of the `k` largest values above `min`, largest first (ties: lower index first). */
export function topK(
  values: ArrayLike<number>,
  k: number,
  min = Number.NEGATIVE_INFINITY,
): { doc: number; score: number }[] {
  const heap: { doc: number; score: number }[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!(v > min)) continue;
    if (heap.length < k) {
      heap.push({ doc: i, score: v });
      if (heap.length === k) heap.sort((a, b) => a.score - b.score);
    } else if (v > heap[0]!.score) {
      // insert in sorted position (k is small)
      heap.shift();
      let j = 0;
      while (j < heap.length && heap[j]!.score < v) j++;
      heap.splice(j, 0, { doc: i, score: v });
    }
  }
  return heap.sort((a, b) => b.score - a.score || a.doc - b.doc);
}
