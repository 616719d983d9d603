/** A sentence of a text with its character span. */
export interface Sentence {
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

// Abbreviations that stand inside a sentence: a full stop after them ends none. "etc." and "usw." are not among
// them: they close a list, and a capital after them starts the next sentence ("..., usw. Beachten Sie, ...").
const ABBREVIATIONS = new Set([
  'e.g',
  'eg',
  'i.e',
  'vs',
  'al',
  'fig',
  'eq',
  'no',
  'nr',
  'cf',
  'approx',
  'resp',
  'incl',
  'vol',
  'pp',
  'ser',
  'proc',
  'z.b',
  'd.h',
  'bzw',
  'ca',
  'vgl',
  'ggf',
  'bspw',
  'sog',
  'evtl',
  'inkl',
  'abb',
  'kap',
  'abschn',
  'hrsg',
  'dr',
  'mr',
  'ms',
  'prof',
  'sec',
  'ref',
  'u.a',
]);

// A German ordinal after an article or preposition ("der 2. Schritt", "am 3. April") is no sentence end.
const GERMAN_ORDINAL =
  /(?:^|\s)(?:der|die|das|dem|den|des|am|im|zum|zur|vom|beim|seit|jede[mnrs]?)\s+\d{1,3}$/iu;
// A number on its own at the start of a sentence or after a colon marks an item of a list run into one line
// ("... two things: 1. The metrics ..."): the item goes on after it.
const ITEM_NUMBER = /(?:^|:)\s*\d{1,2}$/u;

/**
 * Splits text into sentences: after `.`, `!` or `?` followed by white space and an upper-case letter, digit or
 * opening mark (abbreviations such as "e.g." and "z.B.", German ordinals such as "der 2. Schritt" and the number of
 * a list item run into a line, "things: 1. The ...", do not end a sentence), and at blank lines and list items.
 * Spans index the input text; sentences are trimmed.
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
      const sentence = text.slice(start, m.index);
      if (GERMAN_ORDINAL.test(sentence.slice(-24)) || ITEM_NUMBER.test(sentence)) continue;
    }
    push(m.index + (m[1] ? m[1].length + (m[2]?.length ?? 0) : 0));
  }
  push(text.length);
  return out;
}
