import { topK } from './bm25.js';

/** Brute-force cosine search over unit vectors kept in one contiguous matrix. */
export class DenseIndex {
  readonly dimensions: number;
  readonly #matrix: Float32Array;
  readonly size: number;

  constructor(vectors: readonly Float32Array[], dimensions: number) {
    this.dimensions = dimensions;
    this.size = vectors.length;
    // vectors read from an index file are consecutive views of one buffer: use it as it is
    const first = vectors[0];
    const contiguous =
      first !== undefined &&
      first.byteOffset + vectors.length * dimensions * 4 <= first.buffer.byteLength &&
      vectors.every(
        (v, i) =>
          v.length === dimensions &&
          v.buffer === first.buffer &&
          v.byteOffset === first.byteOffset + i * dimensions * 4,
      );
    if (contiguous)
      this.#matrix = new Float32Array(first.buffer, first.byteOffset, vectors.length * dimensions);
    else {
      this.#matrix = new Float32Array(vectors.length * dimensions);
      vectors.forEach((v, i) => {
        this.#matrix.set(v.subarray(0, dimensions), i * dimensions);
      });
    }
  }

  /**
   * Cosine similarity of the query to every vector, or with `only` to the vectors whose `sides` entry is `side`
   * (the others are `NaN`: a question and its gloss each score only the chunks of their language).
   */
  scoreAll(
    query: Float32Array,
    only?: { readonly sides: ArrayLike<number>; readonly side: number },
  ): Float32Array {
    const d = this.dimensions;
    const m = this.#matrix;
    const out = new Float32Array(this.size);
    for (let i = 0; i < this.size; i++) {
      if (only && only.sides[i] !== only.side) {
        out[i] = Number.NaN;
        continue;
      }
      let s = 0;
      const base = i * d;
      for (let j = 0; j < d; j++) s += m[base + j]! * query[j]!;
      out[i] = s;
    }
    return out;
  }

  /** The `k` most similar vectors, best first. */
  search(query: Float32Array, k: number): { doc: number; score: number }[] {
    return topK(this.scoreAll(query), k);
  }

  /** The stored vector of a document (a view). */
  vector(doc: number): Float32Array {
    return this.#matrix.subarray(doc * this.dimensions, (doc + 1) * this.dimensions);
  }
}
