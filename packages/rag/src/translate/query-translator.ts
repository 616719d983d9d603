import { CrpError } from '@crp/common';
import type { Language } from '../types.js';

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
  readonly #raw: Record<Language, Map<string, [string, number][]>>;
  readonly #done: Record<Language, Map<string, Translation[]>> = { de: new Map(), en: new Map() };
  readonly #max: number;
  readonly #lexicons: Partial<Record<Language, ReadonlySet<string>>> = {};

  private constructor(raw: Record<Language, Map<string, [string, number][]>>, max: number, source: string) {
    this.#raw = raw;
    this.#max = max;
    this.source = source;
  }

  /**
   * Builds a translator from lines `german TAB english TAB weight` (stems, lower case; phrases are stems
   * joined by one space), the format of `@crp/rag-dictionary-de-en`. The translations of a term are sorted
   * when it is first looked up, so building stays fast for a dictionary of 300,000 pairs.
   */
  static fromStemPairs(pairs: string, options: QueryTranslatorOptions = {}): QueryTranslator {
    const max = options.maxPerTerm ?? 6;
    if (!Number.isInteger(max) || max < 1) {
      throw new CrpError('invalid-argument', `maxPerTerm must be a positive integer; got ${max}.`);
    }
    if (typeof pairs !== 'string') {
      throw new CrpError('invalid-argument', 'fromStemPairs needs the pairs as one string, a pair per line.');
    }
    const raw: Record<Language, Map<string, [string, number][]>> = { de: new Map(), en: new Map() };
    const excluded = new Set((options.exclude ?? []).map(([de, en]) => `${de}\t${en}`));
    let lines = 0;
    let at = 0;
    while (at < pairs.length) {
      let end = pairs.indexOf('\n', at);
      if (end < 0) end = pairs.length;
      const t1 = pairs.indexOf('\t', at);
      if (t1 > at && t1 < end) {
        const t2 = pairs.indexOf('\t', t1 + 1);
        const de = pairs.slice(at, t1);
        const en = pairs.slice(t1 + 1, t2 > t1 && t2 < end ? t2 : end);
        const weight = t2 > t1 && t2 < end ? Number(pairs.slice(t2 + 1, end)) || 1 : 1;
        if (en && !(excluded.size > 0 && excluded.has(`${de}\t${en}`))) {
          lines++;
          push(raw.de, de, en, weight);
          push(raw.en, en, de, weight);
        }
      }
      at = end + 1;
    }
    if (lines === 0) {
      throw new CrpError(
        'invalid-argument',
        'The dictionary has no pairs; each line must be "german<TAB>english<TAB>weight".',
      );
    }
    return new QueryTranslator(raw, max, options.source ?? 'dictionary');
  }

  /** Translations of a stem (or of stems joined by a space) from `from` into the other language. */
  translate(term: string, from: Language): readonly Translation[] {
    const done = this.#done[from].get(term);
    if (done) return done;
    const list = this.#raw[from].get(term);
    if (!list) return [];
    const sorted = [...list].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const best = sorted[0]![1];
    const out = sorted.slice(0, this.#max).map(([t, weight]) => ({ term: t, weight: weight / best }));
    this.#done[from].set(term, out);
    return out;
  }

  /**
   * The single-word stems of a language that the dictionary knows (German: for splitting compounds). Built
   * once, on first use.
   */
  lexicon(language: Language): ReadonlySet<string> {
    let set = this.#lexicons[language];
    if (!set) {
      set = new Set([...this.#raw[language].keys()].filter((k) => !k.includes(' ') && k.length >= 3));
      this.#lexicons[language] = set;
    }
    return set;
  }

  /** Number of terms with translations, per source language. */
  get size(): Readonly<Record<Language, number>> {
    return { de: this.#raw.de.size, en: this.#raw.en.size };
  }
}

function push(m: Map<string, [string, number][]>, key: string, value: string, weight: number): void {
  let list = m.get(key);
  if (!list) {
    list = [];
    m.set(key, list);
  }
  list.push([value, weight]);
}
