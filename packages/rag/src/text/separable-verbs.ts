/**
 * German separable verbs whose particle stands apart at the end of their clause ("Wie lade ich ein Paket hoch?":
 * hochladen, upload, not laden, load): one finder for the gloss of a quoted sentence and the search's reading of
 * a question.
 */

/**
 * Separable verb prefixes, longest first: "ge" of a participle and "zu" of an infinitive stand after them
 * ("aus|ge|führt", "hoch|zu|laden"); in a main clause they stand alone at its end ("führt ... aus").
 */
export const SEPARABLE: readonly string[] = [
  'zusammen',
  'heraus',
  'zurück',
  'vorbei',
  'weiter',
  'hinzu',
  'voran',
  'durch',
  'fest',
  'hoch',
  'nach',
  'dar',
  'her',
  'hin',
  'mit',
  'auf',
  'aus',
  'bei',
  'ein',
  'vor',
  'weg',
  'ab',
  'an',
  'um',
  'zu',
];

/**
 * A word as the analyser, the gloss and the finder of separable verbs read it (their offsets agree):
 * letters/digits/underscore, optionally joined by hyphens (RAG-Token, dh_make, Vektor-Datenbanken).
 */
export const WORD = /[\p{L}\p{N}_]+(?:-[\p{L}\p{N}_]+)*/gu;

/** A word of a text and where it stands. */
export interface Span {
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

/** The words of a text with their places. */
export const wordSpans = (text: string): Span[] =>
  [...text.matchAll(WORD)].map((m) => ({ text: m[0], start: m.index, end: m.index + m[0].length }));

/** Whether only white space stands between two words of `text` (no punctuation between): they read together. */
export function spaceOnlyBetween(text: string, a: Span, b: Span): boolean {
  return /^\s+$/.test(text.slice(a.end, b.start));
}

// Words that open a German clause and are never its verb: articles, pronouns.
const NO_VERB = new Set(
  'der die das den dem des ein eine einen einem einer eines ich du er sie es wir ihr man dies diese dieser dieses diesen diesem jeder jede jedes'.split(
    ' ',
  ),
);

// Words that join two clauses or phrases: a particle before one ends its clause ("gibt den Inhalt vor und ...").
const CONJUNCTIONS = new Set(['und', 'oder', 'aber', 'sowie', 'bzw', 'sondern', 'doch']);

/**
 * Whether the particle `words[i]` stands at the end of its clause: before punctuation, the text's end, or a
 * conjunction ("gibt den Inhalt vor und DEP-5 bietet ..."), but not in a pair of particles or prepositions ("vor
 * und nach dem Bau", "ab und zu"). A full stop or colon inside a dotted name ("gentoo.doc-base") ends nothing.
 */
function endsClause(text: string, words: readonly Span[], i: number): boolean {
  const w = words[i]!;
  const next = words[i + 1];
  if (next === undefined) return /^\s*(?:[.,;:!?)»«“”"]|$)/u.test(text.slice(w.end));
  const between = text.slice(w.end, next.start);
  if (/^\s*(?:[.,;:!?](?:\s|$)|[)»«“”"])/u.test(between)) return true;
  if (!/^\s+$/.test(between) || !CONJUNCTIONS.has(next.text.toLowerCase())) return false;
  const after = words[i + 2];
  return after === undefined || !SEPARABLE.includes(after.text.toLowerCase());
}

/** A verb joined with its particle from the clause's end, and what `known` said of the joined word. */
export interface SeparableVerb<T> {
  /** Index of the verb among the text's words (`wordSpans`). */
  readonly verb: number;
  /** Index of the particle among them. */
  readonly particle: number;
  /** Particle and verb as one lower-case word: "hochlade", "ausführt". */
  readonly joined: string;
  /** What `known` returned for the joined word. */
  readonly found: T;
}

/**
 * German verbs whose separable particle stands at the end of their clause ("Führen Sie lintian aus", "fügen
 * Sie ... hinzu", "zeigt ... an", "Wie lade ich ein Paket hoch?"), in the order of their particles. The verb is
 * the clause's first small word (or its first word) that makes, with the particle, a word `known` knows (returns
 * something for: the gloss's dictionary look-up, the lexicon's stem of the word or of its base form).
 */
export function separableVerbs<T>(
  text: string,
  known: (joined: string) => T | undefined,
  words: readonly Span[] = wordSpans(text),
): SeparableVerb<T>[] {
  const out: SeparableVerb<T>[] = [];
  const taken = new Set<number>();
  // punctuation before a clause's first word, followed by a space (not the dot of "gentoo.doc-base")
  const clauseStart = /(?:[.,;:!?]\s+|[(»«“”"]\s*)$/u;
  for (const [i, w] of words.entries()) {
    // a particle is written small: "Weg" ending a clause is the noun
    const particle = w.text;
    if (!SEPARABLE.includes(particle) || !endsClause(text, words, i)) continue;
    if (i === 0 || !spaceOnlyBetween(text, words[i - 1]!, w)) continue;
    let first = i;
    while (first > 0 && !clauseStart.test(text.slice(words[first - 1]!.end, words[first]!.start))) first--;
    for (let j = first; j < i; j++) {
      const verb = words[j]!.text;
      if (taken.has(j) || !/^\p{L}+$/u.test(verb) || (j !== first && /^\p{Lu}/u.test(verb))) continue;
      // an article or pronoun opening the clause is no verb, though particle and word may make one by chance
      // ("Die Anzahl steigt an": "andie" stems as andienen, offer; "Der Wert nimmt zu": "zuder" as zudem)
      if (NO_VERB.has(verb.toLowerCase())) continue;
      const joined = `${particle}${verb.toLowerCase()}`;
      const found = known(joined);
      if (found !== undefined) {
        out.push({ verb: j, particle: i, joined, found });
        taken.add(j);
        taken.add(i);
        break;
      }
    }
  }
  return out;
}
