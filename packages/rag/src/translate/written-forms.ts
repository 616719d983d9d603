import { CrpError } from '@crp/common';

/** First line of a written-forms file: which dictionary it belongs to. */
interface WrittenFormsHeader {
  readonly format: string;
  /** Number of pairs of the dictionary (one line of forms each, in the dictionary's order). */
  readonly lines: number;
  /** Length of the dictionary's pairs string (UTF-16 code units), as the translator's fingerprint counts it. */
  readonly pairsLength: number;
}

const FORMAT = 'crp-written-forms 1';

/**
 * The words of a dictionary's pairs as the dictionary writes them ("Datenbank", "Verknüpfung", "database"),
 * where the pairs hold only stems: `forms.txt` of `@crp/rag-dictionary-de-en`, one line per pair in the order of
 * `dictionary.json`, "German edit TAB English edit" for each written pair (more than one where several stem
 * alike: betrachten/consider, beträchtlich/considerable), each edit turning the pair's stem into its written form:
 * "" the stem itself, "^" the first letter capitalised, "N+tail" the last N letters dropped (N omitted when 0) and
 * tail appended, "=form" the form whole ("databas" with "+e" is "database", "verknupf" with "^3+üpfung" is
 * "Verknüpfung"). A JSON header line gives the number of pairs and the pairs string's length, so forms of
 * another dictionary are refused. The lines are found when the first form is asked for (one pass, ~4 MB).
 */
export class WrittenForms {
  readonly header: WrittenFormsHeader;
  readonly #text: string;
  readonly #starts: Int32Array;

  private constructor(text: string, header: WrittenFormsHeader, starts: Int32Array) {
    this.#text = text;
    this.header = header;
    this.#starts = starts;
  }

  /** Reads a written-forms file; throws `corrupt-file` when its header or number of lines is wrong. */
  static parse(text: string): WrittenForms {
    const first = text.indexOf('\n');
    let header: WrittenFormsHeader;
    try {
      header = JSON.parse(first < 0 ? text : text.slice(0, first)) as WrittenFormsHeader;
    } catch (error) {
      throw new CrpError(
        'corrupt-file',
        `The written forms have no JSON header line of format "${FORMAT}".`,
        {
          cause: error,
        },
      );
    }
    if (header?.format !== FORMAT || !Number.isInteger(header.lines) || !Number.isInteger(header.pairsLength))
      throw new CrpError(
        'corrupt-file',
        `The written forms' header must be {"format":"${FORMAT}","lines":N,"pairsLength":N}; got ${text.slice(0, Math.min(first < 0 ? text.length : first, 120))}.`,
      );
    const starts = new Int32Array(header.lines);
    let n = 0;
    for (let at = first + 1; at > 0 && at < text.length && n < header.lines; ) {
      starts[n++] = at;
      const end = text.indexOf('\n', at);
      at = end < 0 ? text.length + 1 : end + 1;
    }
    if (n !== header.lines)
      throw new CrpError(
        'corrupt-file',
        `The written forms have ${n} lines of forms; their header says ${header.lines}.`,
      );
    return new WrittenForms(text, header, starts);
  }

  /**
   * The written pairs [German, English] of the pair numbered `pair` (0-based, in the dictionary's order) whose
   * stems are `de` and `en`: heaviest first, more than one where several written pairs stem alike.
   */
  forms(pair: number, de: string, en: string): (readonly [string, string])[] {
    const start = this.#starts[pair]!;
    const end = this.#text.indexOf('\n', start);
    const edits = this.#text.slice(start, end < 0 ? this.#text.length : end).split('\t');
    const out: (readonly [string, string])[] = [];
    for (let i = 0; i + 1 < edits.length; i += 2)
      out.push([applyFormEdit(de, edits[i]!), applyFormEdit(en, edits[i + 1]!)]);
    return out;
  }
}

/** A stem turned into its written form by an edit of a written-forms file (see {@link WrittenForms}). */
export function applyFormEdit(stem: string, edit: string): string {
  if (edit.startsWith('=')) return edit.slice(1);
  const cap = edit.startsWith('^');
  const rest = cap ? edit.slice(1) : edit;
  const plus = rest.indexOf('+');
  const word =
    plus < 0 ? stem : stem.slice(0, stem.length - Number(rest.slice(0, plus) || 0)) + rest.slice(plus + 1);
  return cap && word ? word[0]!.toUpperCase() + word.slice(1) : word;
}
