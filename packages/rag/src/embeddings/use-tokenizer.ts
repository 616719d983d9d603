/**
 * SentencePiece-style tokenizer of the Universal Sentence Encoder lite model.
 * Ported from @tensorflow-models/universal-sentence-encoder (Copyright 2019 Google LLC, Apache-2.0).
 */

/** Vocabulary entries: piece and score; the first 6 are reserved symbols. */
export type UseVocabulary = ReadonlyArray<readonly [string, number]>;

const SEPARATOR = '\u2581';
const RESERVED = 6;

interface TrieNode {
  children: Map<string, TrieNode>;
  end: boolean;
  length: number;
  score: number;
  index: number;
}

const node = (): TrieNode => ({ children: new Map(), end: false, length: 0, score: 0, index: 0 });

/** Encodes text into vocabulary ids by the best-scoring segmentation (Viterbi over the pieces). */
export class UseTokenizer {
  readonly #root = node();

  constructor(vocabulary: UseVocabulary) {
    for (let i = RESERVED; i < vocabulary.length; i++) {
      const [piece, score] = vocabulary[i]!;
      let n = this.#root;
      const symbols = [...piece];
      for (const s of symbols) {
        let c = n.children.get(s);
        if (!c) {
          c = node();
          n.children.set(s, c);
        }
        n = c;
      }
      n.end = true;
      n.length = symbols.length;
      n.score = score;
      n.index = i;
    }
  }

  encode(input: string): number[] {
    const normalized = input.normalize('NFKC');
    const text = normalized.length > 0 ? SEPARATOR + normalized.replace(/ /g, SEPARATOR) : normalized;
    const symbols = [...text];
    const n = symbols.length;
    const best = new Float64Array(n + 1);
    const words = new Int32Array(n + 1);
    const lengths = new Int32Array(n + 1);
    const seen = new Uint8Array(n + 1);
    seen[0] = 1;
    for (let i = 0; i < n; i++) {
      if (!seen[i]) continue;
      let t = this.#root.children.get(symbols[i]!);
      let matched = false;
      for (let j = i; j < n && t; j++) {
        if (t.end) {
          matched = true;
          this.#relax(best, words, lengths, seen, i, j + 1, t.score, t.index, t.length);
        }
        t = t.children.get(symbols[j + 1]!);
      }
      if (!matched) this.#relax(best, words, lengths, seen, i, i + 1, 0, 0, 1);
    }
    const ids: number[] = [];
    let at = n;
    while (at > 0) {
      ids.push(words[at]!);
      at -= lengths[at]!;
    }
    const merged: number[] = [];
    let prevUnknown = false;
    for (const id of ids) {
      if (!(prevUnknown && id === 0)) merged.push(id);
      prevUnknown = id === 0;
    }
    return merged.reverse();
  }

  #relax(
    best: Float64Array,
    words: Int32Array,
    lengths: Int32Array,
    seen: Uint8Array,
    from: number,
    to: number,
    score: number,
    index: number,
    length: number,
  ): void {
    const s = score + best[from]!;
    if (!seen[to] || s >= best[to]!) {
      best[to] = s;
      words[to] = index;
      lengths[to] = length;
      seen[to] = 1;
    }
  }
}
