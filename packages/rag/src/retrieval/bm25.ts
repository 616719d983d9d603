/** Parameters of Okapi BM25. */
export interface Bm25Options {
  /** Term-frequency saturation; default 1.2. */
  readonly k1?: number;
  /** Length normalisation; default 0.75. */
  readonly b?: number;
}

/** A document's BM25 score and the part each query term contributed. */
export interface Bm25Hit {
  readonly doc: number;
  readonly score: number;
}

/**
 * Okapi BM25 over documents given as term lists (see `analyze`). Documents are numbered in the order
 * they were given. Build once, query many times.
 */
export class Bm25Index {
  readonly k1: number;
  readonly b: number;
  readonly #postings = new Map<string, { docs: number[]; tfs: number[] }>();
  readonly #lengths: Float64Array;
  readonly #avgLength: number;

  constructor(documents: readonly (readonly string[])[], options: Bm25Options = {}) {
    this.k1 = options.k1 ?? 1.2;
    this.b = options.b ?? 0.75;
    this.#lengths = new Float64Array(documents.length);
    let total = 0;
    documents.forEach((terms, d) => {
      this.#lengths[d] = terms.length;
      total += terms.length;
      const tf = new Map<string, number>();
      for (const t of terms) tf.set(t, (tf.get(t) ?? 0) + 1);
      for (const [t, n] of tf) {
        let p = this.#postings.get(t);
        if (!p) {
          p = { docs: [], tfs: [] };
          this.#postings.set(t, p);
        }
        p.docs.push(d);
        p.tfs.push(n);
      }
    });
    this.#avgLength = documents.length ? total / documents.length : 0;
  }

  /** Number of documents. */
  get size(): number {
    return this.#lengths.length;
  }

  /** Inverse document frequency (BM25+ style, never negative); 0 for unknown terms. */
  idf(term: string): number {
    const df = this.#postings.get(term)?.docs.length ?? 0;
    if (df === 0) return 0;
    const n = this.size;
    return Math.log(1 + (n - df + 0.5) / (df + 0.5));
  }

  /** What one term adds to a document's score given its frequency there. */
  termScore(term: string, doc: number, tf: number): number {
    if (tf <= 0) return 0;
    const len = this.#lengths[doc] ?? 0;
    const norm = this.k1 * (1 - this.b + (this.b * len) / (this.#avgLength || 1));
    return (this.idf(term) * (tf * (this.k1 + 1))) / (tf + norm);
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

  /** Scores of all documents that share a term with the query (unsorted); `scores[doc]`. */
  scoreAll(queryTerms: readonly string[]): Float64Array {
    const scores = new Float64Array(this.size);
    const unique = [...new Set(queryTerms)];
    for (const t of unique) {
      const p = this.#postings.get(t);
      if (!p) continue;
      const idf = this.idf(t);
      for (let i = 0; i < p.docs.length; i++) {
        const d = p.docs[i]!;
        const tf = p.tfs[i]!;
        const norm = this.k1 * (1 - this.b + (this.b * this.#lengths[d]!) / (this.#avgLength || 1));
        scores[d] = scores[d]! + (idf * (tf * (this.k1 + 1))) / (tf + norm);
      }
    }
    return scores;
  }

  /** The `k` best documents for the query terms, best first (only documents with a score above 0). */
  search(queryTerms: readonly string[], k: number): Bm25Hit[] {
    return topK(this.scoreAll(queryTerms), k, 0);
  }
}

/** Indices of the `k` largest values above `min`, largest first. */
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
