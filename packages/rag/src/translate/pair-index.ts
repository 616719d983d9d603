import { CrpError } from '@crp/common';
import type { Language } from '../types.js';

/**
 * A precomputed lookup index over the raw bytes of a dictionary file in the format of
 * `@crp/rag-dictionary-de-en` (`dictionary.json`, whose `pairs` string holds lines
 * `german \t english \t weight`, written with JSON's `\t` and `\n` escapes). The index holds byte offsets of the pairs'
 * lines, sorted by their German and by their English side (UTF-8 byte order), so a term is found by binary
 * search in the file's bytes: opening a dictionary costs reading two files, with no JSON parse and no hash
 * tables. Built by `buildPairIndex` (script: `pnpm --filter @crp/rag-dictionary-de-en build-index`).
 *
 * File layout (little-endian): magic `CRPDIX01`, u32 length of a JSON header, the header
 * ({@link PairIndexHeader}), zero padding to 4 bytes, then int32 line offsets sorted by German, then the same
 * offsets sorted by English.
 */
export interface PairIndexHeader {
  readonly format: 1;
  /** Size and checksum of the dictionary file the index was built from (a stale index is refused). */
  readonly dictionaryBytes: number;
  readonly checksum: number;
  /**
   * SHA-256 (hex) of the dictionary file, when the builder was given it (the package's index has it). A runtime
   * with a native digest (Node's `node:crypto`) checks this instead of `checksum`: ~5 ms for 10 MB, against ~25
   * ms for the checksum in JavaScript that runs once per process, before V8 has optimised it.
   */
  readonly sha256?: string;
  /** Byte range of the pairs string's content inside the dictionary file. */
  readonly pairsStart: number;
  readonly pairsEnd: number;
  /** Length of the decoded pairs string in UTF-16 code units (part of the translator's fingerprint). */
  readonly pairsLength: number;
  /** The dictionary's `source` member. */
  readonly source: string;
  /** Number of pairs (lines with both sides). */
  readonly lines: number;
}

const MAGIC = 'CRPDIX01';
const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const BACKSLASH = 0x5c;
const QUOTE = 0x22;
const T = 0x74;
const N = 0x6e;

/** A 32-bit checksum of every byte (FNV-1a over 32-bit words, then the tail): a few ms for 10 MB. */
export function dictionaryChecksum(bytes: Uint8Array): number {
  const words = Math.floor(bytes.byteLength / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let h = 0x811c9dc5;
  for (let i = 0; i < words; i++) h = Math.imul(h ^ view.getUint32(i * 4, true), 0x01000193);
  for (let i = words * 4; i < bytes.byteLength; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

/** Byte offsets of one line: its start, the end of the German side, the English side and the line. */
interface LineRanges {
  deEnd: number;
  enStart: number;
  enEnd: number;
  end: number;
}

/**
 * Builds the index of a dictionary file's bytes (see {@link PairIndexHeader}). Refuses a file whose pairs hold
 * escapes other than `\t` and `\n` (the index reads the bytes as they are).
 */
export function buildPairIndex(
  dictionary: Uint8Array,
  options: { readonly sha256?: string } = {},
): Uint8Array {
  const parsed = JSON.parse(new TextDecoder().decode(dictionary)) as { pairs?: unknown; source?: unknown };
  if (typeof parsed.pairs !== 'string' || typeof parsed.source !== 'string')
    throw new CrpError('invalid-argument', 'The dictionary needs string members "pairs" and "source".');
  // the pairs string's content: after `"pairs":"` up to the first unescaped quote
  const key = new TextEncoder().encode('"pairs":"');
  let pairsStart = -1;
  for (let i = 0; i + key.length <= dictionary.byteLength && pairsStart < 0; i++)
    if (key.every((b, j) => dictionary[i + j] === b)) pairsStart = i + key.length;
  let pairsEnd = pairsStart;
  while (pairsEnd >= 0 && pairsEnd < dictionary.byteLength && dictionary[pairsEnd] !== QUOTE)
    pairsEnd += dictionary[pairsEnd] === BACKSLASH ? 2 : 1;
  const raw = pairsStart < 0 ? '' : new TextDecoder().decode(dictionary.subarray(pairsStart, pairsEnd));
  if (
    pairsStart < 0 ||
    /\\[^tn]/.test(raw) ||
    raw.replace(/\\t/g, '\t').replace(/\\n/g, '\n') !== parsed.pairs
  ) {
    throw new CrpError(
      'invalid-argument',
      'The dictionary\'s member "pairs" must be written with no escapes but \\t and \\n (as build-dictionary.mjs writes it).',
    );
  }
  const starts: number[] = [];
  for (let at = pairsStart; at < pairsEnd; ) {
    const r = lineRanges(dictionary, at, pairsEnd);
    // a pair needs both sides (as QueryTranslator.fromStemPairs reads the string)
    if (r.deEnd > at && r.enEnd > r.enStart) starts.push(at);
    at = r.end + 2;
  }
  const side = (language: Language) => (at: number) => {
    const r = lineRanges(dictionary, at, pairsEnd);
    return language === 'de' ? dictionary.subarray(at, r.deEnd) : dictionary.subarray(r.enStart, r.enEnd);
  };
  const sorted = (language: Language) => {
    const keyOf = side(language);
    // one char per byte: string order is then UTF-8 byte order, and native string compares are fast
    const keys = new Map(starts.map((s) => [s, String.fromCharCode(...keyOf(s))]));
    return Int32Array.from(
      [...starts].sort((a, b) => {
        const ka = keys.get(a)!;
        const kb = keys.get(b)!;
        return ka < kb ? -1 : ka > kb ? 1 : a - b;
      }),
    );
  };
  const header: PairIndexHeader = {
    format: 1,
    dictionaryBytes: dictionary.byteLength,
    checksum: dictionaryChecksum(dictionary),
    ...(options.sha256 !== undefined ? { sha256: options.sha256 } : {}),
    pairsStart,
    pairsEnd,
    pairsLength: parsed.pairs.length,
    source: parsed.source,
    lines: starts.length,
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const head = 12 + json.byteLength;
  const offset = head + ((4 - (head % 4)) % 4);
  const out = new Uint8Array(offset + starts.length * 8);
  out.set(new TextEncoder().encode(MAGIC), 0);
  const view = new DataView(out.buffer);
  view.setUint32(8, json.byteLength, true);
  out.set(json, 12);
  const put = (values: Int32Array, at: number) =>
    values.forEach((v, i) => {
      view.setInt32(at + i * 4, v, true);
    });
  put(sorted('de'), offset);
  put(sorted('en'), offset + starts.length * 4);
  return out;
}

/** Ranges of the line that starts at `at` (escapes `\t` and `\n` are two bytes). */
function lineRanges(bytes: Uint8Array, at: number, limit: number): LineRanges {
  let deEnd = -1;
  let tab2 = -1;
  let i = at;
  for (; i < limit; i++) {
    if (bytes[i] !== BACKSLASH) continue;
    const c = bytes[i + 1];
    if (c === N) break;
    if (c === T) {
      if (deEnd < 0) deEnd = i;
      else if (tab2 < 0) tab2 = i;
    }
    i++;
  }
  if (deEnd < 0) return { deEnd: at, enStart: i, enEnd: i, end: i };
  return { deEnd, enStart: deEnd + 2, enEnd: tab2 < 0 ? i : tab2, end: i };
}

/** Characters of a key's end that {@link PairIndex.keysEndingWith} and `PairTable` file keys under. */
export const KEY_TAIL = 4;
const SPACE = 0x20;

/** The last `KEY_TAIL` bytes of a key as one number (a suffix of as many characters ends with them too). */
function tailOf(key: Uint8Array): number {
  let tail = 0;
  for (let i = Math.max(0, key.length - KEY_TAIL); i < key.length; i++) tail = tail * 256 + key[i]!;
  return tail;
}

/** Buckets of the keys filed by their tail (a power of two). */
const TAIL_BUCKETS = 1 << 16;

/** The bucket of a tail (its `KEY_TAIL` bytes as one number): the high bits of a multiplicative hash. */
function tailBucket(tail: number): number {
  return Math.imul(tail, 0x9e3779b1) >>> 16;
}

/**
 * Keys filed by their last `KEY_TAIL` bytes: the entries of bucket `k` are `first[k]` up to `first[k + 1]`, each a
 * line offset (`lines`), in the order of the sorted keys.
 */
interface TailTable {
  readonly first: Int32Array;
  readonly lines: Int32Array;
}

/**
 * Where the tables `PairIndex.keysEndingWith` files the keys in are kept between processes (a cache folder): what
 * `write` was given, `read` returns as it was, or `undefined`. A table of another dictionary, another layout or
 * damaged is not used (filed again and written); a store that cannot read or write only costs the filing.
 */
export interface KeyTailStore {
  read(language: Language): Uint8Array | undefined;
  write(language: Language, bytes: Uint8Array): void;
}

const TAIL_MAGIC = 'CRPTAIL1';
// magic, then u32: buckets, entries, the dictionary's size, checksum and lines (the table belongs to that file)
const TAIL_HEAD = 8 + 5 * 4;

/** A tail table as bytes: `TAIL_HEAD`, then `first` and `lines` (little-endian 32-bit integers). */
function writeTailTable(table: TailTable, header: PairIndexHeader): Uint8Array {
  const n = table.lines.length;
  const out = new Uint8Array(TAIL_HEAD + (TAIL_BUCKETS + 1 + n) * 4);
  out.set(new TextEncoder().encode(TAIL_MAGIC), 0);
  const view = new DataView(out.buffer);
  [TAIL_BUCKETS, n, header.dictionaryBytes, header.checksum, header.lines].forEach((v, i) => {
    view.setUint32(8 + i * 4, v, true);
  });
  let at = TAIL_HEAD;
  for (const values of [table.first, table.lines])
    for (const v of values) {
      view.setUint32(at, v >>> 0, true);
      at += 4;
    }
  return out;
}

/**
 * The tail table in `bytes` (see `writeTailTable`) when it is one of this layout and dictionary, else undefined. Its
 * entries are not checked one by one here (that cost what reading saves): a lookup stays within the entries and
 * skips a line outside the pairs.
 */
function readTailTable(bytes: Uint8Array, header: PairIndexHeader): TailTable | undefined {
  if (bytes.byteLength < TAIL_HEAD) return undefined;
  if (new TextDecoder('latin1').decode(bytes.subarray(0, 8)) !== TAIL_MAGIC) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [buckets, n, size, checksum, lineCount] = [0, 1, 2, 3, 4].map((i) => view.getUint32(8 + i * 4, true));
  if (
    buckets !== TAIL_BUCKETS ||
    size !== header.dictionaryBytes ||
    checksum !== header.checksum ||
    lineCount !== header.lines ||
    n! > header.lines ||
    bytes.byteLength !== TAIL_HEAD + (TAIL_BUCKETS + 1 + n!) * 4
  )
    return undefined;
  // in place when aligned on a little-endian machine, else copied
  const ints = (at: number, count: number) => {
    if (littleEndian && (bytes.byteOffset + at) % 4 === 0)
      return new Int32Array(bytes.buffer, bytes.byteOffset + at, count);
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getInt32(at + i * 4, true);
    return out;
  };
  const table = {
    first: ints(TAIL_HEAD, TAIL_BUCKETS + 1),
    lines: ints(TAIL_HEAD + (TAIL_BUCKETS + 1) * 4, n!),
  };
  return table.first[0] === 0 && table.first[TAIL_BUCKETS] === n ? table : undefined;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** Lookups in a dictionary file through its {@link buildPairIndex} index. */
export class PairIndex {
  readonly header: PairIndexHeader;
  readonly #bytes: Uint8Array;
  readonly #sorted: Record<Language, Int32Array>;
  readonly #decoder = new TextDecoder();
  readonly #encoder = new TextEncoder();
  #distinct: Record<Language, number> | undefined;
  /** The lines' offsets in file order, for {@link ordinal}. */
  #inOrder: Int32Array | undefined;
  /** Per language, the lines of the one-word keys by their last bytes (see {@link keysEndingWith}). */
  readonly #byTail: Partial<Record<Language, TailTable>> = {};

  readonly #keyTails: KeyTailStore | undefined;

  private constructor(
    bytes: Uint8Array,
    header: PairIndexHeader,
    de: Int32Array,
    en: Int32Array,
    keyTails: KeyTailStore | undefined,
  ) {
    this.#bytes = bytes;
    this.header = header;
    this.#sorted = { de, en };
    this.#keyTails = keyTails;
  }

  /**
   * Opens the index `index` of the dictionary file `dictionary`; throws `corrupt-file` when the index is not
   * one or was built from another dictionary file (then rebuild it with
   * `pnpm --filter @crp/rag-dictionary-de-en build-index`). With `sha256` (a native SHA-256 in hex) and an index
   * that stores the digest, the digest is compared instead of the slower {@link dictionaryChecksum}.
   */
  static open(
    dictionary: Uint8Array,
    index: Uint8Array,
    options: { readonly sha256?: (bytes: Uint8Array) => string; readonly keyTails?: KeyTailStore } = {},
  ): PairIndex {
    const magic = index.byteLength >= 12 ? new TextDecoder('latin1').decode(index.subarray(0, 8)) : '';
    if (magic !== MAGIC)
      throw new CrpError('corrupt-file', `The dictionary index has no ${MAGIC} header; rebuild it.`);
    const view = new DataView(index.buffer, index.byteOffset, index.byteLength);
    const jsonLength = view.getUint32(8, true);
    let header: PairIndexHeader;
    try {
      header = JSON.parse(new TextDecoder().decode(index.subarray(12, 12 + jsonLength))) as PairIndexHeader;
    } catch (error) {
      throw new CrpError('corrupt-file', 'The dictionary index header is not JSON; rebuild it.', {
        cause: error,
      });
    }
    const head = 12 + jsonLength;
    const offset = head + ((4 - (head % 4)) % 4);
    if (header.format !== 1 || index.byteLength !== offset + header.lines * 8)
      throw new CrpError('corrupt-file', 'The dictionary index has an unknown format or size; rebuild it.');
    const sameContent =
      header.sha256 !== undefined && options.sha256
        ? options.sha256(dictionary) === header.sha256
        : header.checksum === dictionaryChecksum(dictionary);
    if (header.dictionaryBytes !== dictionary.byteLength || !sameContent)
      throw new CrpError(
        'corrupt-file',
        'The dictionary index was built from another dictionary.json; rebuild it with `pnpm --filter @crp/rag-dictionary-de-en build-index`.',
      );
    const ints = (at: number) => {
      // in place when aligned on a little-endian machine (a file read whole is)
      if (littleEndian && (index.byteOffset + at) % 4 === 0)
        return new Int32Array(index.buffer, index.byteOffset + at, header.lines);
      const out = new Int32Array(header.lines);
      for (let i = 0; i < header.lines; i++) out[i] = view.getInt32(at + i * 4, true);
      return out;
    };
    return new PairIndex(dictionary, header, ints(offset), ints(offset + header.lines * 4), options.keyTails);
  }

  /** Compares the `language` key of the line at `at` with `term` (UTF-8), byte by byte. */
  #compare(at: number, language: Language, term: Uint8Array): number {
    const b = this.#bytes;
    let i = at;
    if (language === 'en') i = lineRanges(b, at, this.header.pairsEnd).enStart;
    let j = 0;
    for (; j < term.length; i++, j++) {
      const c = b[i]!;
      if (c === BACKSLASH || i >= this.header.pairsEnd) return -1; // the key ended first
      if (c !== term[j]) return c - term[j]!;
    }
    return b[i] === BACKSLASH || i >= this.header.pairsEnd ? 0 : 1;
  }

  /** Line offsets whose `language` side is `term`. */
  *lines(term: string, language: Language): Generator<number> {
    const sorted = this.#sorted[language];
    const key = this.#encoder.encode(term);
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#compare(sorted[mid]!, language, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < sorted.length && this.#compare(sorted[i]!, language, key) === 0; i++)
      yield sorted[i]!;
  }

  /** Number of pairs. */
  get count(): number {
    return this.header.lines;
  }

  /**
   * The number of the line at `at` among the pairs, in file order (0-based). The German order is the file's
   * when the dictionary is sorted by its German side (build-dictionary.mjs sorts it); else it is sorted once.
   */
  ordinal(at: number): number {
    if (!this.#inOrder) {
      const de = this.#sorted.de;
      let ascending = true;
      for (let i = 1; i < de.length && ascending; i++) ascending = de[i - 1]! < de[i]!;
      this.#inOrder = ascending ? de : Int32Array.from(de).sort();
    }
    const order = this.#inOrder;
    let lo = 0;
    let hi = order.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (order[mid]! < at) lo = mid + 1;
      else hi = mid;
    }
    if (order[lo] !== at)
      throw new CrpError('invalid-argument', `No line of the dictionary starts at byte ${at}.`);
    return lo;
  }

  /** German side, English side and weight of the line at `at`. */
  pair(at: number): [string, string, number] {
    const b = this.#bytes;
    const r = lineRanges(b, at, this.header.pairsEnd);
    const decode = (from: number, to: number) => this.#decoder.decode(b.subarray(from, to));
    const weight = r.enEnd < r.end ? Number(decode(r.enEnd + 2, r.end).replace(/\\t/g, '\t')) || 1 : 1;
    return [decode(at, r.deEnd), decode(r.enStart, r.enEnd), weight];
  }

  /**
   * The distinct one-word keys of a language that end with `suffix` (at least `KEY_TAIL` characters) and are
   * longer, in the order of the language's sorted keys. The first call files every key by its last `KEY_TAIL`
   * bytes into typed arrays (a counting sort by a hash of them), reading the bytes in place: no key is copied or
   * decoded, no object made per line (a few ms; a `Map` of arrays with a view per key took 0.15-0.35 s).
   */
  keysEndingWith(suffix: string, language: Language): string[] {
    const end = this.#encoder.encode(suffix);
    if (suffix.length < KEY_TAIL) return [];
    this.#byTail[language] ??= this.#storedTailTable(language);
    const table = this.#byTail[language];
    const bucket = tailBucket(tailOf(end));
    const out = new Set<string>();
    // within the entries and the pairs however the table was stored (see readTailTable)
    const [from, to] = [
      Math.max(0, table.first[bucket]!),
      Math.min(table.lines.length, table.first[bucket + 1]!),
    ];
    for (let k = from; k < to; k++) {
      const line = table.lines[k]!;
      if (line < this.header.pairsStart || line >= this.header.pairsEnd) continue;
      const key = this.#key(line, language);
      if (key.length > end.length && compareBytes(key.subarray(key.length - end.length), end) === 0)
        out.add(this.#decoder.decode(key));
    }
    return [...out];
  }

  /**
   * The tail table of `language` from the store when it holds this dictionary's (see {@link KeyTailStore}), else
   * filed now and given to the store.
   */
  #storedTailTable(language: Language): TailTable {
    const stored = this.#keyTails?.read(language);
    const table = stored && readTailTable(stored, this.header);
    if (table) return table;
    const filed = this.#tailTable(language);
    this.#keyTails?.write(language, writeTailTable(filed, this.header));
    return filed;
  }

  /** Files the lines of the `language` keys longer than `KEY_TAIL` bytes without a space by their last bytes. */
  #tailTable(language: Language): TailTable {
    const b = this.#bytes;
    const sorted = this.#sorted[language];
    // 0 marks a line left out: a kept key's tail is never 0 (its bytes are text, no NUL)
    const tailOfLine = new Uint32Array(sorted.length);
    const count = new Int32Array(TAIL_BUCKETS + 1);
    let kept = 0;
    for (let i = 0; i < sorted.length; i++) {
      const at = sorted[i]!;
      const from = language === 'de' ? at : lineRanges(b, at, this.header.pairsEnd).enStart;
      const to = this.#keyEnd(from);
      if (to - from <= KEY_TAIL) continue;
      let space = false;
      for (let j = from; j < to && !space; j++) space = b[j] === SPACE;
      if (space) continue;
      let tail = 0;
      for (let j = to - KEY_TAIL; j < to; j++) tail = tail * 256 + b[j]!;
      tailOfLine[i] = tail;
      count[tailBucket(tail) + 1]!++;
      kept++;
    }
    // bucket starts; then each line into its bucket in sorted order (the lookup's order is the keys' order)
    for (let k = 1; k <= TAIL_BUCKETS; k++) count[k]! += count[k - 1]!;
    const first = Int32Array.from(count);
    const lines = new Int32Array(kept);
    for (let i = 0; i < sorted.length; i++) {
      const tail = tailOfLine[i]!;
      if (tail !== 0) lines[count[tailBucket(tail)]!++] = sorted[i]!;
    }
    return { first, lines };
  }

  /** The bytes of the `language` key of the line at `at`. */
  #key(at: number, language: Language): Uint8Array {
    const b = this.#bytes;
    if (language === 'en') {
      const r = lineRanges(b, at, this.header.pairsEnd);
      return b.subarray(r.enStart, r.enEnd);
    }
    return b.subarray(at, this.#keyEnd(at));
  }

  /** Where a key that starts at `from` ends: at its line's next tab or end (escaped), not reading further. */
  #keyEnd(from: number): number {
    const b = this.#bytes;
    let i = from;
    for (; i < this.header.pairsEnd; i++)
      if (b[i] === BACKSLASH) {
        if (b[i + 1] === T || b[i + 1] === N) break;
        i++;
      }
    return i;
  }

  /** Number of distinct keys per language (counted once, when first asked). */
  get distinct(): Record<Language, number> {
    if (!this.#distinct) {
      const count = (language: Language) => {
        const s = this.#sorted[language];
        const keyOf = (at: number) => {
          const r = lineRanges(this.#bytes, at, this.header.pairsEnd);
          return language === 'de'
            ? this.#bytes.subarray(at, r.deEnd)
            : this.#bytes.subarray(r.enStart, r.enEnd);
        };
        let n = 0;
        for (let i = 0; i < s.length; i++)
          if (i === 0 || compareBytes(keyOf(s[i - 1]!), keyOf(s[i]!)) !== 0) n++;
        return n;
      };
      this.#distinct = { de: count('de'), en: count('en') };
    }
    return this.#distinct;
  }
}
