/**
 * SentencePiece-style tokenizer of the Universal Sentence Encoder lite model.
 * Ported from @tensorflow-models/universal-sentence-encoder (Copyright 2019 Google LLC, Apache-2.0).
 */

/** Vocabulary entries: piece and score; the first 6 are reserved symbols. */
export type UseVocabulary = ReadonlyArray<readonly [string, number]>;

const SEPARATOR = '\u2581';
const RESERVED = 6;

/** Encodes text into vocabulary ids by the best-scoring segmentation (Viterbi over the pieces). */
export class UseTokenizer {
  // The trie of the pieces as one open-addressing hash table of (node, code point) -> child in typed arrays.
  // A trie of objects with a Map per node (about 25,000 of them) took ~30 ms to build in every process that
  // embeds, and as much again in garbage collection.
  readonly #slotNode: Int32Array;
  readonly #slotSymbol: Int32Array;
  readonly #slotChild: Int32Array;
  readonly #mask: number;
  /** Per node: the id of the piece ending there (0: none; ids below RESERVED are never pieces), its length and score. */
  readonly #piece: Int32Array;
  readonly #length: Int32Array;
  readonly #score: Float64Array;

  constructor(vocabulary: UseVocabulary) {
    let symbols = 0;
    for (let i = RESERVED; i < vocabulary.length; i++) symbols += vocabulary[i]![0].length;
    // at most one node per symbol (UTF-16 units bound the code points), plus the root
    const nodes = symbols + 1;
    let size = 1;
    while (size < 2 * nodes) size *= 2;
    this.#mask = size - 1;
    this.#slotNode = new Int32Array(size).fill(-1);
    this.#slotSymbol = new Int32Array(size);
    this.#slotChild = new Int32Array(size);
    this.#piece = new Int32Array(nodes);
    this.#length = new Int32Array(nodes);
    this.#score = new Float64Array(nodes);
    // one flat loop (no calls, no string iteration): it runs once per process, mostly before V8 optimises it
    const slotNode = this.#slotNode;
    const slotSymbol = this.#slotSymbol;
    const slotChild = this.#slotChild;
    const mask = this.#mask;
    let next = 1;
    for (let i = RESERVED; i < vocabulary.length; i++) {
      const entry = vocabulary[i]!;
      const piece = entry[0];
      let n = 0;
      let length = 0;
      for (let k = 0; k < piece.length; k++) {
        let symbol = piece.charCodeAt(k);
        // a surrogate pair is one code point, as `[...piece]` counts it
        if (symbol >= 0xd800 && symbol < 0xdc00 && k + 1 < piece.length) {
          const low = piece.charCodeAt(k + 1);
          if (low >= 0xdc00 && low < 0xe000) {
            symbol = (symbol - 0xd800) * 0x400 + (low - 0xdc00) + 0x10000;
            k++;
          }
        }
        let slot = (Math.imul(n, 0x9e3779b1) ^ Math.imul(symbol, 0x85ebca6b)) & mask;
        while (slotNode[slot] !== -1 && (slotNode[slot] !== n || slotSymbol[slot] !== symbol))
          slot = (slot + 1) & mask;
        if (slotNode[slot] === -1) {
          slotNode[slot] = n;
          slotSymbol[slot] = symbol;
          slotChild[slot] = next++;
        }
        n = slotChild[slot]!;
        length++;
      }
      // a piece listed twice keeps its last entry
      this.#piece[n] = i;
      this.#length[n] = length;
      this.#score[n] = entry[1];
    }
  }

  #slot(node: number, symbol: number): number {
    let i = (Math.imul(node, 0x9e3779b1) ^ Math.imul(symbol, 0x85ebca6b)) & this.#mask;
    while (this.#slotNode[i] !== -1 && (this.#slotNode[i] !== node || this.#slotSymbol[i] !== symbol))
      i = (i + 1) & this.#mask;
    return i;
  }

  /** The child of `node` by `symbol`, or -1. */
  #child(node: number, symbol: number): number {
    const i = this.#slot(node, symbol);
    return this.#slotNode[i] === -1 ? -1 : this.#slotChild[i]!;
  }

  encode(input: string): number[] {
    const normalized = input.normalize('NFKC');
    const text = normalized.length > 0 ? SEPARATOR + normalized.replace(/ /g, SEPARATOR) : normalized;
    const symbols: number[] = [];
    for (const s of text) symbols.push(s.codePointAt(0)!);
    const n = symbols.length;
    const best = new Float64Array(n + 1);
    const words = new Int32Array(n + 1);
    const lengths = new Int32Array(n + 1);
    const seen = new Uint8Array(n + 1);
    seen[0] = 1;
    for (let i = 0; i < n; i++) {
      if (!seen[i]) continue;
      let t = this.#child(0, symbols[i]!);
      let matched = false;
      for (let j = i; j < n && t !== -1; j++) {
        if (this.#piece[t]! > 0) {
          matched = true;
          this.#relax(
            best,
            words,
            lengths,
            seen,
            i,
            j + 1,
            this.#score[t]!,
            this.#piece[t]!,
            this.#length[t]!,
          );
        }
        t = j + 1 < n ? this.#child(t, symbols[j + 1]!) : -1;
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
