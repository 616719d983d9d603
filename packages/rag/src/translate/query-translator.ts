import { CrpError } from '@crp/common';
import type { WordSet } from '../text/analyzer.js';
import type { Language } from '../types.js';
import { KEY_TAIL, type KeyTailStore, PairIndex } from './pair-index.js';
import { type ByteSource, WrittenForms } from './written-forms.js';

/** A translation of a term: the other language's stem (or stems joined by a space) and its weight. */
export interface Translation {
  readonly term: string;
  /** Relative to the best translation of the same term: 1 for the best, less for the others. */
  readonly weight: number;
}

/** Options of {@link QueryTranslator.fromStemPairs}. */
export interface QueryTranslatorOptions {
  /** Translations kept per term, heaviest first; default 6. */
  readonly maxPerTerm?: number;
  /** Where the pairs come from, shown in explanations; default "dictionary". */
  readonly source?: string;
  /** Pairs [German stem, English stem] to leave out (false friends, stem collisions; see `FALSE_FRIENDS`). */
  readonly exclude?: readonly (readonly [string, string])[];
  /**
   * The dictionary's written forms (`forms.txt` of `@crp/rag-dictionary-de-en`, see `WrittenForms`), read when a
   * written form is first asked for ({@link QueryTranslator.writtenForms}); without it there are only stems.
   */
  readonly writtenForms?: () => Uint8Array | string | ByteSource;
  /** Called once when the written forms cannot be read or belong to another dictionary (then only stems). */
  readonly onWrittenFormsError?: (error: unknown) => void;
}

/**
 * Translates the index terms of a question between English and German with a bilingual dictionary of stem
 * pairs, so that an English question also searches German documents (and the other way round) without any
 * model or network. The translations of a word join the search as its synonyms (see `analyzeQuery`).
 *
 * ```ts
 * import dictionary from '@crp/rag-dictionary-de-en'; // Ding, GPL-2.0-or-later, optional package
 * const translator = QueryTranslator.fromStemPairs(dictionary.pairs, { source: dictionary.source });
 * translator.translate('databas', 'en'); // [{ term: 'datenbank', weight: 1 }, ...]
 * ```
 */
export class QueryTranslator {
  readonly source: string;
  /** Length of the pairs string (UTF-16 code units), part of the fingerprint. */
  readonly #pairsLength: number;
  readonly #lookup: () => PairLookup;
  readonly #excluded: ReadonlySet<string>;
  readonly #done: Record<Language, Map<string, Translation[]>> = { de: new Map(), en: new Map() };
  readonly #all: Record<Language, Map<string, Translation[]>> = { de: new Map(), en: new Map() };
  readonly #max: number;
  readonly #lexicons: Partial<Record<Language, WordSet>> = {};
  readonly #formsOptions: Pick<QueryTranslatorOptions, 'writtenForms' | 'onWrittenFormsError'>;
  /** The dictionary line of each translation handed out, for its written form. */
  readonly #lineOf = new WeakMap<Translation, number>();
  #table: PairLookup | undefined;
  /** null: no written forms (none given, or refused). */
  #forms: WrittenForms | null | undefined;

  private constructor(
    pairsLength: number,
    lookup: () => PairLookup,
    options: QueryTranslatorOptions,
    source: string,
  ) {
    this.#pairsLength = pairsLength;
    this.#lookup = lookup;
    this.#excluded = new Set((options.exclude ?? []).map(([de, en]) => `${de}\t${en}`));
    this.#max = maxPerTerm(options);
    this.source = source;
    this.#formsOptions = options;
  }

  /**
   * A translator over lines `german TAB english TAB weight` (stems, lower case; phrases are stems joined by one
   * space), the format of `@crp/rag-dictionary-de-en`. Nothing is parsed here: the first lookup indexes the
   * lines in one pass over the string (hash tables of line numbers, no per-pair objects), and each term's
   * translations are read and sorted when it is first looked up, so a process that asks one question pays for
   * the entries it needs, not for 300,000 pairs.
   */
  static fromStemPairs(pairs: string, options: QueryTranslatorOptions = {}): QueryTranslator {
    maxPerTerm(options);
    if (typeof pairs !== 'string') {
      throw new CrpError('invalid-argument', 'fromStemPairs needs the pairs as one string, a pair per line.');
    }
    if (!/[^\t\n]\t[^\t\n]/.test(pairs)) {
      throw new CrpError(
        'invalid-argument',
        'The dictionary has no pairs; each line must be "german<TAB>english<TAB>weight".',
      );
    }
    return new QueryTranslator(
      pairs.length,
      () => PairTable.build(pairs),
      options,
      options.source ?? 'dictionary',
    );
  }

  /**
   * The same translator over a dictionary file's raw bytes (`dictionary.json` of `@crp/rag-dictionary-de-en`)
   * and its precomputed index (`dictionary.index`: the pairs' byte offsets sorted by each language, built by
   * `pnpm --filter @crp/rag-dictionary-de-en build-index`): nothing is parsed or hashed, a term
   * is found by binary search. Translations and fingerprint equal those of `fromStemPairs` over the file's
   * pairs. Throws `corrupt-file` when the index is damaged or was built from another dictionary file.
   */
  static fromPairIndex(
    dictionary: Uint8Array,
    index: Uint8Array,
    options: QueryTranslatorOptions & {
      /** A native SHA-256 (hex), to check the dictionary against the index faster (see `PairIndex.open`). */
      readonly sha256?: (bytes: Uint8Array) => string;
      /** Where the keys filed by their ends ({@link endingWith}) are kept between processes (a cache folder). */
      readonly keyTails?: KeyTailStore;
    } = {},
  ): QueryTranslator {
    maxPerTerm(options);
    const table = PairIndex.open(dictionary, index, {
      ...(options.sha256 ? { sha256: options.sha256 } : {}),
      ...(options.keyTails ? { keyTails: options.keyTails } : {}),
    });
    return new QueryTranslator(
      table.header.pairsLength,
      () => table,
      options,
      options.source ?? table.header.source,
    );
  }

  #index(): PairLookup {
    this.#table ??= this.#lookup();
    return this.#table;
  }

  /**
   * Translations of a stem (or of stems joined by a space) from `from` into the other language: the heaviest
   * `maxPerTerm` of {@link translateAll}.
   */
  translate(term: string, from: Language): readonly Translation[] {
    const done = this.#done[from].get(term);
    if (done) return done;
    const out = this.translateAll(term, from).slice(0, this.#max);
    if (this.#done[from].size >= 100_000) this.#done[from].clear();
    this.#done[from].set(term, out);
    return out;
  }

  /** Every translation the dictionary has for a stem, heaviest first (ties by term), weights relative to the best. */
  translateAll(term: string, from: Language): readonly Translation[] {
    const done = this.#all[from].get(term);
    if (done) return done;
    const list: [string, number, number][] = [];
    const table = this.#index();
    for (const line of table.lines(term, from)) {
      const [de, en, weight] = table.pair(line);
      if (this.#excluded.size > 0 && this.#excluded.has(`${de}\t${en}`)) continue;
      list.push([from === 'de' ? en : de, weight, line]);
    }
    const sorted = list.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const best = sorted[0]?.[1] ?? 1;
    const out = sorted.map(([t, weight, line]) => {
      const translation = { term: t, weight: weight / best };
      this.#lineOf.set(translation, line);
      return translation;
    });
    if (this.#all[from].size >= 100_000) this.#all[from].clear();
    this.#all[from].set(term, out);
    return out;
  }

  /**
   * A translation (of {@link translate} or {@link translateAll} from `from`) and the word it translates, as the
   * dictionary writes them: for the pair `datenbank`/`databas` "Datenbank" and "database"; where stems collide,
   * the words of that very pair (`modul`/`modul` is Modul/module, `modulation`/`modul` Modulation/modulation),
   * and more than one, heaviest first, where several written pairs stem alike (`betracht`/`consid`: betrachten/
   * consider, beträchtlich/considerable), each with its `share` of the pair's weight (0 to 1: Ding's "Größe/
   * greatness" is a small part of `gross`/`great`, mostly groß/great). Empty without written forms (see
   * `QueryTranslatorOptions.writtenForms`) or for a translation this translator did not give.
   */
  writtenForms(
    translation: Translation,
    from: Language,
  ): readonly { readonly word: string; readonly translation: string; readonly share: number }[] {
    const line = this.#lineOf.get(translation);
    const forms = this.#writtenForms();
    if (line === undefined || !forms) return [];
    const [de, en] = this.#index().pair(line);
    let pairs: (readonly [string, string, number])[];
    try {
      pairs = forms.forms(this.#index().ordinal(line), de, en);
    } catch (error) {
      // a block that does not match the header (a file changed after it was opened): reported once, and stems
      // from then on, as without forms; a gloss must not fail the answer it is part of
      this.#forms = null;
      this.#formsOptions.onWrittenFormsError?.(error);
      return [];
    }
    return pairs.map(([d, e, share]) =>
      from === 'de' ? { word: d, translation: e, share } : { word: e, translation: d, share },
    );
  }

  #writtenForms(): WrittenForms | null {
    if (this.#forms !== undefined) return this.#forms;
    this.#forms = null;
    const load = this.#formsOptions.writtenForms;
    if (!load) return null;
    try {
      const forms = WrittenForms.parse(load());
      const table = this.#index();
      if (forms.header.lines !== table.count || forms.header.pairsLength !== this.#pairsLength)
        throw new CrpError(
          'corrupt-file',
          `The written forms are of another dictionary (${forms.header.lines} pairs, pairs string of ${forms.header.pairsLength}); this one has ${table.count} pairs and ${this.#pairsLength}. Rebuild them with the dictionary (build-dictionary.mjs).`,
        );
      this.#forms = forms;
    } catch (error) {
      this.#formsOptions.onWrittenFormsError?.(error);
    }
    return this.#forms;
  }

  /**
   * The single-word stems of a language (at least 3 letters) that the dictionary translates (German: for
   * splitting compounds). Looked up per word, nothing is listed.
   */
  lexicon(language: Language): WordSet {
    let lexicon = this.#lexicons[language];
    if (!lexicon) {
      lexicon = {
        has: (stem: string) =>
          stem.length >= 3 && !stem.includes(' ') && this.translate(stem, language).length > 0,
      };
      this.#lexicons[language] = lexicon;
    }
    return lexicon;
  }

  /**
   * The one-word stems of `language` the dictionary translates that end with `stem` and are at least 3 letters
   * longer: for a German stem, the compounds whose last part it is ("softwarebetreu", "kinderbetreu" for
   * `betreu`), or words that only end alike. The first call files every key of the language by its end
   * (`PairIndex.keysEndingWith`); stems shorter than `KEY_TAIL` (4) letters have none.
   */
  endingWith(stem: string, language: Language): readonly string[] {
    return this.#index()
      .keysEndingWith(stem, language)
      .filter((key) => key.length >= stem.length + 3);
  }

  /** Number of distinct terms in the dictionary, per source language (indexes both languages). */
  get size(): Readonly<Record<Language, number>> {
    const { de, en } = this.#index().distinct;
    return { de, en };
  }

  /**
   * Identifies the dictionary and its exclusions without indexing it (what saved index terms depend on): the
   * source, the length of the pairs and the excluded pairs.
   */
  get fingerprint(): string {
    return `${this.source}:${this.#pairsLength}:${hashString([...this.#excluded].sort().join('\n')).toString(36)}`;
  }
}

function maxPerTerm(options: QueryTranslatorOptions): number {
  const max = options.maxPerTerm ?? 6;
  if (!Number.isInteger(max) || max < 1) {
    throw new CrpError('invalid-argument', `maxPerTerm must be a positive integer; got ${max}.`);
  }
  return max;
}

/** Where a translator finds its pairs: the lines of a term, and a line's German side, English side and weight. */
interface PairLookup {
  lines(term: string, language: Language): Iterable<number>;
  pair(line: number): [string, string, number];
  /** The distinct one-word keys of a language that end with `suffix` (of `KEY_TAIL` letters or more) and are longer. */
  keysEndingWith(suffix: string, language: Language): string[];
  /** A line's number among the pairs (0-based, in the dictionary's order), and the number of pairs. */
  ordinal(line: number): number;
  readonly count: number;
  /** Number of distinct terms per source language. */
  readonly distinct: Readonly<Record<Language, number>>;
}

const SLOTS = 1 << 20; // open addressing; a dictionary of up to ~500,000 distinct terms per language

/**
 * Line numbers of a pairs string, by German and by English key: for each language a hash table from the key to
 * its first line and, per line, the next line with the same key. Built in one pass of character codes.
 */
class PairTable implements PairLookup {
  readonly #distinct: Record<Language, number> = { de: 0, en: 0 };
  readonly #heads: Partial<Record<Language, Int32Array>> = {};
  readonly #next: Partial<Record<Language, Int32Array>> = {};
  readonly #byTail: Partial<Record<Language, Map<string, number[]>>> = {};
  private constructor(
    readonly text: string,
    readonly count: number,
    readonly starts: Int32Array,
    readonly tab1: Int32Array,
    readonly tab2: Int32Array,
    readonly ends: Int32Array,
  ) {}

  /** Finds the lines and their tabs; the hash table of a language is built when it is first looked up. */
  static build(text: string): PairTable {
    // one scan of character codes (String#indexOf from an offset is slow on a string this long)
    const length = text.length;
    let n = 1;
    for (let i = 0; i < length; i++) if (text.charCodeAt(i) === 10) n++;
    const starts = new Int32Array(n);
    const tab1 = new Int32Array(n);
    const tab2 = new Int32Array(n);
    const ends = new Int32Array(n);
    let lines = 0;
    let start = 0;
    let t1 = -1;
    let t2 = -1;
    for (let i = 0; i <= length; i++) {
      const c = i < length ? text.charCodeAt(i) : 10;
      if (c === 9) {
        if (t1 < 0) t1 = i;
        else if (t2 < 0) t2 = i;
      } else if (c === 10) {
        const enEnd = t2 < 0 ? i : t2;
        // a pair needs both sides: "german TAB english [TAB weight]"
        if (t1 > start && enEnd > t1 + 1) {
          starts[lines] = start;
          tab1[lines] = t1;
          tab2[lines] = enEnd;
          ends[lines] = i;
          lines++;
        }
        start = i + 1;
        t1 = -1;
        t2 = -1;
      }
    }
    return new PairTable(text, lines, starts, tab1, tab2, ends);
  }

  ordinal(line: number): number {
    return line;
  }

  get distinct(): Readonly<Record<Language, number>> {
    this.side('de');
    this.side('en');
    return this.#distinct;
  }

  #from(language: Language, line: number): number {
    return language === 'de' ? this.starts[line]! : this.tab1[line]! + 1;
  }
  #to(language: Language, line: number): number {
    return language === 'de' ? this.tab1[line]! : this.tab2[line]!;
  }

  /** The hash table of one language's keys: first line per key and, per line, the next line of its key. */
  side(language: Language): { heads: Int32Array; next: Int32Array } {
    let heads = this.#heads[language];
    let next = this.#next[language];
    if (!heads || !next) {
      heads = new Int32Array(SLOTS).fill(-1);
      next = new Int32Array(this.count).fill(-1);
      for (let line = 0; line < this.count; line++) {
        const from = this.#from(language, line);
        const to = this.#to(language, line);
        for (let slot = hashRange(this.text, from, to) & (SLOTS - 1); ; slot = (slot + 1) & (SLOTS - 1)) {
          const head = heads[slot]!;
          if (head < 0) {
            heads[slot] = line;
            this.#distinct[language]++;
            break;
          }
          const hf = this.#from(language, head);
          if (this.#to(language, head) - hf === to - from && sameRange(this.text, from, hf, to - from)) {
            // the new line heads its key's chain (translate sorts a key's lines, so their order does not matter)
            next[line] = head;
            heads[slot] = line;
            break;
          }
        }
      }
      this.#heads[language] = heads;
      this.#next[language] = next;
    }
    return { heads, next };
  }

  /** The lines whose `language` side is `term`. */
  *lines(term: string, language: Language): Generator<number> {
    const { heads, next } = this.side(language);
    for (let slot = hashString(term) & (SLOTS - 1); heads[slot]! >= 0; slot = (slot + 1) & (SLOTS - 1)) {
      const head = heads[slot]!;
      const from = this.#from(language, head);
      if (this.#to(language, head) - from === term.length && this.text.startsWith(term, from)) {
        for (let line = head; line >= 0; line = next[line]!) yield line;
        return;
      }
    }
  }

  keysEndingWith(suffix: string, language: Language): string[] {
    if (suffix.length < KEY_TAIL) return [];
    let byTail = this.#byTail[language];
    if (!byTail) {
      byTail = new Map();
      const { next } = this.side(language);
      // a key's first line ends its chain: the only one of the key without a next line
      for (let line = 0; line < this.count; line++) {
        if (next[line] !== -1) continue;
        const [from, to] = [this.#from(language, line), this.#to(language, line)];
        if (to - from <= KEY_TAIL || this.text.slice(from, to).includes(' ')) continue;
        const tail = this.text.slice(to - KEY_TAIL, to);
        const list = byTail.get(tail);
        if (list) list.push(line);
        else byTail.set(tail, [line]);
      }
      this.#byTail[language] = byTail;
    }
    return (byTail.get(suffix.slice(-KEY_TAIL)) ?? [])
      .map((line) => this.text.slice(this.#from(language, line), this.#to(language, line)))
      .filter((key) => key.length > suffix.length && key.endsWith(suffix));
  }

  /** German side, English side and weight of a line. */
  pair(line: number): [string, string, number] {
    const t2 = this.tab2[line]!;
    const end = this.ends[line]!;
    const weight = t2 < end ? Number(this.text.slice(t2 + 1, end)) || 1 : 1;
    return [
      this.text.slice(this.starts[line]!, this.tab1[line]!),
      this.text.slice(this.tab1[line]! + 1, t2),
      weight,
    ];
  }
}

// FNV-1a over UTF-16 code units; a range of the pairs string and a term hash alike
function hashRange(text: string, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function hashString(s: string): number {
  return hashRange(s, 0, s.length);
}

function sameRange(text: string, a: number, b: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (text.charCodeAt(a + i) !== text.charCodeAt(b + i)) return false;
  return true;
}
