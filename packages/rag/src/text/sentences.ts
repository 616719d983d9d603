/** A sentence of a text with its character span. */
export interface Sentence {
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

const ABBREVIATIONS = new Set([
  'e.g',
  'i.e',
  'etc',
  'vs',
  'al',
  'fig',
  'eq',
  'no',
  'z.b',
  'd.h',
  'bzw',
  'ca',
  'dr',
  'mr',
  'ms',
  'prof',
  'sec',
  'ref',
  'u.a',
  'usw',
]);

/**
 * Splits text into sentences: after `.`, `!`, `?` or `:` followed by white space and an upper-case
 * letter, digit or opening mark (abbreviations such as "e.g." and "z.B." do not end a sentence), and at
 * blank lines and list items. Spans index the input text; sentences are trimmed.
 */
export function splitSentences(text: string): Sentence[] {
  const out: Sentence[] = [];
  let start = 0;
  const push = (end: number) => {
    let s = start;
    let e = end;
    while (s < e && /\s/.test(text[s]!)) s++;
    while (e > s && /\s/.test(text[e - 1]!)) e--;
    if (e > s && /[\p{L}\p{N}]/u.test(text.slice(s, e)))
      out.push({ text: text.slice(s, e), start: s, end: e });
    start = end;
  };
  const boundary =
    /([.!?])(["')\]]*)\s+(?=[\p{Lu}\p{N}"'([`*#-])|\n\s*\n|\n(?=\s*(?:[-*+•–]|\d+[.)]|#{1,6})\s)|\n(?=\d+(?:\.\d+)+\s+\p{Lu})|\s(?=•\s)/gu;
  for (const m of text.matchAll(boundary)) {
    if (m[1] === '.') {
      const before = text.slice(Math.max(start, m.index - 6), m.index);
      const word = /([\p{L}.]+)$/u.exec(before)?.[1]?.toLowerCase() ?? '';
      if (ABBREVIATIONS.has(word) || /^\p{L}$/u.test(word)) continue;
    }
    push(m.index + (m[1] ? m[1].length + (m[2]?.length ?? 0) : 0));
  }
  push(text.length);
  return out;
}
