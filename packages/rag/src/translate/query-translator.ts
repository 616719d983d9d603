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
  readonly #maps: Record<Language, Map<string, Translation[]>>;

  private constructor(maps: Record<Language, Map<string, Translation[]>>, source: string) {
    this.#maps = maps;
    this.source = source;
  }

  /**
   * Builds a translator from lines `german TAB english TAB weight` (stems, lower case; phrases are stems
   * joined by one space), the format of `@crp/rag-dictionary-de-en`.
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
    let lines = 0;
    for (const line of pairs.split('\n')) {
      const [de, en, w] = line.split('\t');
      if (!de || !en) continue;
      const weight = Number(w ?? 1) || 1;
      lines++;
      push(raw.de, de, en, weight);
      push(raw.en, en, de, weight);
    }
    if (lines === 0) {
      throw new CrpError(
        'invalid-argument',
        'The dictionary has no pairs; each line must be "german<TAB>english<TAB>weight".',
      );
    }
    const finish = (m: Map<string, [string, number][]>) => {
      const out = new Map<string, Translation[]>();
      for (const [k, list] of m) {
        list.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
        const best = list[0]![1];
        out.set(
          k,
          list.slice(0, max).map(([term, weight]) => ({ term, weight: weight / best })),
        );
      }
      return out;
    };
    return new QueryTranslator({ de: finish(raw.de), en: finish(raw.en) }, options.source ?? 'dictionary');
  }

  /** Translations of a stem (or of stems joined by a space) from `from` into the other language. */
  translate(term: string, from: Language): readonly Translation[] {
    return this.#maps[from].get(term) ?? [];
  }

  /** Number of terms with translations, per source language. */
  get size(): Readonly<Record<Language, number>> {
    return { de: this.#maps.de.size, en: this.#maps.en.size };
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
