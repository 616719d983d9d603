import { analyze } from '../text/analyzer.js';
import { detectLanguage } from '../text/language.js';
import { ANY_BLOCK, announcesBlock, endsSentence, STEP_COMMAND } from './announcement.js';
import { leansBack } from './passage-sentences.js';
import type { QuestionIntent } from './question-intent.js';
import type { ScoredSentence } from './sentence-scorer.js';
import type { Source } from './source.js';

// A second passage from another source needs this share of the best score (or the caller's higher cutoff) ...
const SECOND_NEARLY = 0.75;
// ... or, when it completes the first (see composeExtractiveAnswer), this much less: a caller's cutoff above
// SECOND_NEARLY raises both floors alike. A passage that brings what the first lacks (a question concept, the
// asked-for relation) is what a reader looks for next even when its words match the question less: from 0.40 of
// the best score instead of 0.50, answers covering their passage rose on the held-out sets 3-13 325 -> 327 of 448
// (none lost; tuning 142 -> 143 of 175), answers 20 characters longer on average (527 -> 547). Lowering the floor of
// any second passage instead (0.65) gained as much and cost twice the length (565), see the evaluation guide.
const COMPLETION_ALLOWANCE = 0.35;
// A second passage whose only news is the asked-for relation (it holds no question concept the first lacks) needs
// at least this share of the first's `lexical` (the share of the question's concepts): else it is about something
// else that happens to give a reason or a condition.
const ABOUT_SHARE = 0.5;

/** Options of the extractive answer. */
export interface ExtractiveOptions {
  /** At most this many sentences in a passage; default 4. */
  readonly maxSentences?: number;
  /**
   * A sentence next to the best one joins its passage when it scores at least this share of it; default 0.6.
   * Sentences of the passage at or above it are the ones that answer (highlighted).
   */
  readonly relativeCutoff?: number;
  /** The question asks for code: a sentence that announces code (ends with ":") brings the code block. */
  readonly allowCode?: boolean;
  /**
   * Intent of the question (a list question lets a passage run through list items, a procedure lets a sentence
   * ending in ":" bring the code block it announces); default: none.
   */
  readonly intent?: QuestionIntent;
  /**
   * The name a question asks about and nothing more ("What is CRP?": `asksForName`), as the question writes it. A
   * second passage must then be about it (`ScoredSentence.about`), and an answer that quotes no sentence defining
   * it says so (`ComposedAnswer.undefinedName`) rather than pass a use of the name off as its definition.
   */
  readonly name?: string;
}

/**
 * A sentence of an answer (or a code block a step of it announces) with the sources it cites; extractive ones also
 * say where they were quoted from.
 */
export interface AnswerSentence {
  /**
   * Prose: the sentence on one line. Code: the block exactly as its source has it (line breaks and indentation
   * kept). Either ends with the citation `[file, p. N]` when it closes its passage (`citation`; after code, on a line
   * of its own).
   */
  readonly text: string;
  /** `code` for a code block (show it as code, never reflowed), `prose` for everything else. */
  readonly kind: 'prose' | 'code';
  /** When the sentence closes its passage: the citation its `text` ends with, to show code apart from it. */
  readonly citation?: string;
  readonly citations: number[];
  /** For quoted sentences: source number and span in its text. */
  readonly quote?: { readonly source: number; readonly start: number; readonly end: number };
  /** For quoted sentences: true for the sentences that answer, false for the context around them. */
  readonly highlight?: boolean;
  /**
   * For a quotation in the other language than the question's: its word-by-word gloss from the dictionary
   * (stems, not a translation), so the reader can follow it.
   */
  readonly gloss?: string;
}

/** A composed answer: the text (with citations) and its sentences. */
export interface ComposedAnswer {
  readonly text: string;
  readonly sentences: AnswerSentence[];
  /**
   * For a question that asks what a name is (`ExtractiveOptions.name`): the name, when no quoted sentence defines it
   * (the sources use it without saying what it is); absent when one does.
   */
  readonly undefinedName?: string;
}

function contentTerms(text: string): Set<string> {
  return new Set(analyze(text, detectLanguage(text)));
}

/** Whether most (over 75%) of a sentence's content words were said already. */
function repeats(text: string, said: ReadonlySet<string>): boolean {
  const terms = [...contentTerms(text)];
  return terms.length > 0 && terms.filter((t) => said.has(t)).length / terms.length > 0.75;
}

/**
 * Whether a scored sentence may stand in an answer: prose (or a footnote, which can hold the instruction itself)
 * with content, never navigation or (unasked) code.
 */
function answerable(s: ScoredSentence, code: boolean): boolean {
  if (s.boilerplate || s.kind === 'heading' || (s.kind === 'code' && !code)) return false;
  return s.text.trim().length >= 12;
}

/**
 * A code block as its chunk has it: the scored sentence is trimmed, which takes the first line's indentation (a
 * block continued from the previous chunk starts indented). Blank lines around it are dropped. When the sentence's
 * span does not hold its text (sentences made by hand), the sentence as it is.
 */
function codeAsWritten(s: ScoredSentence, src: Source): string {
  const raw = src.text.slice(s.start, s.end);
  return raw.trim() === s.text.trim() ? raw.replace(/^(?:[ \t]*\r?\n)+/, '').trimEnd() : s.text;
}

/**
 * The answer as plain text: prose sentences joined by spaces, each code block a paragraph of its own with its lines
 * as they are (each after `codeIndent`, default none), its citation on the line below it.
 */
export function answerText(
  sentences: readonly Pick<AnswerSentence, 'text' | 'kind' | 'citation'>[],
  codeIndent = '',
): string {
  let out = '';
  for (const s of sentences) {
    if (s.kind !== 'code') {
      out += out && !out.endsWith('\n') ? ` ${s.text}` : s.text;
      continue;
    }
    const cited = s.citation !== undefined && s.text.endsWith(s.citation);
    const code = cited ? s.text.slice(0, -s.citation!.length).trimEnd() : s.text;
    // an indented block's empty lines stay empty (no trailing spaces)
    const lines = code.split('\n').map((l) => (l.trim() ? codeIndent + l : codeIndent ? '' : l));
    // after prose a blank line; after a block, which ends with one already, none more
    out += `${out && !out.endsWith('\n') ? '\n\n' : ''}${lines.join('\n')}${cited ? `\n${s.citation}` : ''}\n\n`;
  }
  return out.trimEnd();
}

// A word as prose writes it (no identifier: "dh_make", "model.fit", "gentoo.1", "targets:" stay starts)
const LOWER_WORD = /^\p{Ll}+(?=[\s,])/u;

/**
 * Whether `list[i]` goes on with the sentence before it rather than starting one: it opens with a lower-case word
 * ("which computes ...", "and then ...") right after a code block it explains or after prose that stopped
 * mid-sentence. A passage that opened with it would start in the middle of a sentence.
 */
function continuesSentence(list: readonly ScoredSentence[], i: number): boolean {
  const s = list[i];
  const prev = list[i - 1];
  if (!s || !prev || s.kind === 'code' || s.kind === 'heading' || prev.kind === 'heading') return false;
  // the text does not go on into its footnotes nor out of them; a note may go on in the next note
  if ((s.kind === 'note') !== (prev.kind === 'note')) return false;
  // an item after an item is an entry of the list, not the rest of a sentence
  if (!LOWER_WORD.test(s.text.trim()) || (s.kind === 'list-item' && prev.kind === 'list-item')) return false;
  return prev.kind === 'code' || !endsSentence(prev.text);
}

/** The first three words of a sentence, lower-case, without punctuation. */
function openingWords(text: string): string[] {
  return (text.toLowerCase().match(/[\p{L}\p{N}_-]+/gu) ?? []).slice(0, 3);
}

/**
 * Whether two sentences are built alike, the second of a pair that sets two things side by side: they open with
 * different words and then the same content word in the same place ("Globale Erklärungen listen ... / Lokale
 * Erklärungen zeigen ...", "VectorRetriever will fetch ... / SummaryRetriever will fetch ...", "The epsilon rule
 * ... / The gamma rule ...").
 */
function parallel(a: string, b: string): boolean {
  const x = openingWords(a);
  const y = openingWords(b);
  for (let p = 0; p < 2; p++) {
    if (x[p] === y[p]) continue;
    return [1, 2].some((q) => q > p && x[q] !== undefined && x[q] === y[q] && x[q]!.length >= 4);
  }
  return false;
}

/**
 * The run of `list` (a source's sentences in reading order) around `anchor` that stays on its side of the line
 * under the text: its footnotes when it is a footnote, else the text without them. A passage never runs from the
 * text into a note or out of one (a note quoted stands alone or with the next note).
 */
function sameSide(anchor: ScoredSentence, list: readonly ScoredSentence[]): readonly ScoredSentence[] {
  const note = anchor.kind === 'note';
  const at = list.findIndex((x) => x.index === anchor.index);
  let lo = at;
  let hi = at;
  while (lo > 0 && (list[lo - 1]!.kind === 'note') === note) lo--;
  while (hi + 1 < list.length && (list[hi + 1]!.kind === 'note') === note) hi++;
  return at < 0 ? list : list.slice(lo, hi + 1);
}

/**
 * The passage around an anchor sentence: a contiguous stretch of at most `max` sentences of its source in
 * reading order, on the anchor's side of the text and its footnotes (see `sameSide`). It reaches back when the anchor leans on its predecessor ("However, ...", "This ..."), the
 * predecessor also answers or it opens the anchor's section (the first sentence under a heading), and forward
 * when the anchor announces what follows (":") or opens its section, the next sentence refers back, goes on with
 * a sentence the one before left unfinished, also answers, (list questions) continues the list or (procedures) is
 * the command a step announces (`STEP_COMMAND`). It never opens mid-sentence: an anchor that does ("which computes
 * ...") brings what it goes on from, context that does stays out. One of two sentences built alike (a pair set
 * side by side) brings the other, except for a definition. Then, while there is
 * room, it takes in a neighbour that brings what the passage still lacks: the asked-for relation (the reason,
 * the instruction, the number, ...) when no sentence of the passage holds it, or a question concept none of its
 * sentences holds (the other thing of a comparison, the fix after the problem); the next sentence before the
 * previous one, and one sentence further when the one between fits too. Last, it never ends on a sentence that
 * announces a block without the block, nor opens on a block without its announcement (`keepAnnounced`).
 */
function passageAround(
  anchor: ScoredSentence,
  sentences: readonly ScoredSentence[],
  opts: {
    max: number;
    cutoff: number;
    code: boolean;
    listing: boolean;
    procedure: boolean;
    asks: boolean;
    pairs: boolean;
  },
  said: ReadonlySet<string> = new Set(),
): ScoredSentence[] {
  const list = sameSide(anchor, sentences);
  const at = list.findIndex((x) => x.index === anchor.index);
  let lo = at;
  let hi = at;
  const strong = (s: ScoredSentence) => s.score >= anchor.score * opts.cutoff;
  // context that the answer already holds (the same sentence from an overlapping chunk) is not repeated
  const ok = (s: ScoredSentence | undefined): s is ScoredSentence =>
    s !== undefined && answerable(s, opts.code) && s.kind !== 'table-row' && !repeats(s.text, said);
  const prev = list[lo - 1];
  // the sentence right under a heading says what the section is about; the one after it goes on from there
  // ("Threads count / By default, the backend uses ... / You can use setThreadsCount to set it"). A list item
  // under a heading is one entry of a list, not its lead-in.
  const opensSection = (s: ScoredSentence) => list[lo - 2]?.kind === 'heading' && s.kind !== 'list-item';
  if (
    ok(prev) &&
    (leansBack(list[lo]!.text) || /:\s*$/.test(prev.text) || strong(prev) || opensSection(prev))
  )
    lo--;
  // an anchor that goes on with what is before it ("which computes ...") brings that, code too, and the sentence
  // announcing the code ("... can be run using:", "... installed with": `ANY_BLOCK`)
  if (lo === at) {
    while (hi - lo + 1 < opts.max && continuesSentence(list, lo) && !repeats(list[lo - 1]!.text, said)) lo--;
    const intro = list[lo - 1];
    if (
      lo < at &&
      list[lo]!.kind === 'code' &&
      hi - lo + 1 < opts.max &&
      ok(intro) &&
      announcesBlock(intro, list[lo], ANY_BLOCK)
    )
      lo--;
  }
  while (hi - lo + 1 < opts.max) {
    const cur = list[hi]!;
    const next = list[hi + 1];
    // a step of a procedure that announces its command ("... wie folgt erstellen:") shows it, asked for or not
    const shows = opts.procedure && announcesBlock(cur, next, STEP_COMMAND) && !repeats(next!.text, said);
    if (!next || (!ok(next) && !shows)) break;
    // an anchor that opens its section says what the section is about: the paragraph after it says what it is or
    // does ("Suchindex / Beim Abruf müssen wir ... einen Suchindex erstellen. / Ein Index speichert ...")
    const opensWithNext =
      hi === at && list[at - 1]?.kind === 'heading' && cur.kind !== 'list-item' && next.kind === 'paragraph';
    const continues =
      /:\s*$/.test(cur.text) ||
      continuesSentence(list, hi + 1) ||
      opensWithNext ||
      leansBack(next.text) ||
      strong(next) ||
      (opts.listing && next.kind === 'list-item' && (cur.kind === 'list-item' || /:\s*$/.test(cur.text)));
    if (!continues) break;
    hi++;
  }
  const held = new Set(list.slice(lo, hi + 1).flatMap((s) => s.concepts ?? []));
  let related = list.slice(lo, hi + 1).some((s) => s.relation);
  const adds = (s: ScoredSentence | undefined): s is ScoredSentence =>
    ok(s) && ((opts.asks && !related && s.relation) || (s.concepts ?? []).some((c) => !held.has(c)));
  // a sentence taken in before the passage must start one: the rest of a sentence would open it mid-way
  const opens = (i: number) => adds(list[i]) && !continuesSentence(list, i);
  const room = (n: number) => hi - lo + 1 + n <= opts.max;
  while (room(1)) {
    // the next or previous sentence, else one sentence further when the one between fits too
    // ("X will ... Ideal for ... Y will ...")
    let from: number;
    let to: number;
    if (adds(list[hi + 1])) [from, to] = [hi + 1, hi + 1];
    else if (opens(lo - 1)) [from, to] = [lo - 1, lo - 1];
    else if (room(2) && ok(list[hi + 1]) && adds(list[hi + 2])) [from, to] = [hi + 1, hi + 2];
    else if (room(2) && ok(list[lo - 1]) && opens(lo - 2)) [from, to] = [lo - 2, lo - 1];
    else break;
    for (const s of list.slice(from, to + 1)) {
      for (const c of s.concepts ?? []) held.add(c);
      related ||= s.relation;
    }
    lo = Math.min(lo, from);
    hi = Math.max(hi, to);
  }
  // one of a pair set side by side brings the other ("Globale Erklärungen ... / Lokale Erklärungen ..."); not for a
  // definition, which asks for one thing: the next entry of a glossary is another
  if (opts.pairs) {
    if (room(1) && ok(list[hi + 1]) && parallel(list[hi]!.text, list[hi + 1]!.text)) hi++;
    if (room(1) && ok(list[lo - 1]) && parallel(list[lo - 1]!.text, list[lo]!.text)) lo--;
  }
  // context before the anchor that starts mid-sentence (taken for its score) is left out rather than cut
  while (lo < at && continuesSentence(list, lo)) lo++;
  [lo, hi] = keepAnnounced(list, lo, hi, at, opts.max, ok, said);
  return list.slice(lo, hi + 1);
}

/**
 * Whether `s` announces the block `next` starts (a code block, a list, a run of table rows; see `ANY_BLOCK`). Without
 * `next` (the chunk ends there) an announcement by its ending.
 */
function announces(s: ScoredSentence | undefined, next: ScoredSentence | undefined): boolean {
  return announcesBlock(s, next, ANY_BLOCK);
}

/**
 * The window `lo..hi` (around the anchor at `at`, at most `max` sentences) with no announcement cut off from
 * what it announces. A last sentence that announces a block brings it (a code block whole, a list's items while
 * there is room; context before the anchor gives way when the anchor itself announces it); where that cannot be
 * (table rows, which an answer does not quote, no room, the block said already or in the next chunk) the window
 * ends one sentence earlier, down to the anchor. A window opening on a block brings the sentence announcing it,
 * or, past the anchor, leaves the block out.
 */
function keepAnnounced(
  list: readonly ScoredSentence[],
  lo: number,
  hi: number,
  at: number,
  max: number,
  ok: (s: ScoredSentence | undefined) => boolean,
  said: ReadonlySet<string>,
): [number, number] {
  const runEnd = (from: number) => {
    let end = from;
    // a code block is one block; list items and table rows run on while the kind stays
    while (list[from]!.kind !== 'code' && list[end + 1]?.kind === list[from]!.kind) end++;
    return end;
  };
  // code is quoted when announced, asked for or not; table rows never stand in an answer
  const quotable = (s: ScoredSentence) =>
    s.kind === 'code' ? !s.boilerplate && !repeats(s.text, said) : s.kind !== 'table-row' && ok(s);
  while (announces(list[hi], list[hi + 1])) {
    if (list[hi + 1] && quotable(list[hi + 1]!)) {
      if (hi === at) while (hi - lo + 1 >= max && lo < at) lo++;
      if (hi - lo + 1 < max) {
        hi = Math.min(runEnd(hi + 1), lo + max - 1);
        break;
      }
    }
    if (hi === at) break;
    hi--;
  }
  while (lo < at && continuesSentence(list, lo)) lo++;
  if (ANY_BLOCK.blocks.has(list[lo]!.kind) && announces(list[lo - 1], list[lo])) {
    if (hi - lo + 1 < max && ok(list[lo - 1])) lo--;
    else {
      const kind = list[lo]!.kind;
      while (lo < at && list[lo]!.kind === kind) lo++;
    }
  }
  return [lo, hi];
}

/**
 * Composes an answer without a language model: the best passage (a contiguous stretch of 1-4 sentences of
 * one source, in reading order, around the best scoring sentence, see `scoreSourceSentences`: relevant, holding
 * the relation the question asks for, and adding something to the question) with the sentences that answer
 * marked `highlight`, and at most one more passage from another source when it says something the first does
 * not (mostly other content words) and is nearly as good (at least 75% of the best score, or the caller's
 * `relativeCutoff` when higher) or, 35 points lower (at 40% of the best score by default), completes the first:
 * holds a question concept or the asked-for relation that no sentence of the first passage holds (the second
 * passage of issue 24: a German passage for the concept an English one lacks); one that brings only the relation
 * names at least half as much of the question as the first passage. Of the two, the one that holds the asked-for
 * relation stands first when the other does not (the steps of a procedure before a note that scored higher).
 * Headings, code (unless asked for), tables of contents, link lists and source notes never stand as the answer.
 * Each passage is followed by its citation `[file, p. N]`.
 */
export function composeExtractiveAnswer(
  scored: readonly ScoredSentence[],
  sources: readonly Source[],
  options: ExtractiveOptions = {},
): ComposedAnswer {
  const code = options.allowCode ?? false;
  const opts = {
    max: options.maxSentences ?? 4,
    cutoff: options.relativeCutoff ?? 0.6,
    code,
    listing: options.intent?.kind === 'list',
    procedure: options.intent?.kind === 'procedure',
    asks: options.intent !== undefined && options.intent.kind !== 'other',
    pairs: options.intent?.kind !== 'definition',
  };
  // a sentence that shares no word (or translation) with the question is chosen on the embedding alone; it
  // may be context around an answer, but it anchors one only when no candidate shares a word
  const anyShared = scored.some((s) => s.lexical > 0 && s.score > 0 && answerable(s, code));
  const bySource = new Map<number, ScoredSentence[]>();
  for (const s of scored) bySource.set(s.source, [...(bySource.get(s.source) ?? []), s]);
  for (const list of bySource.values()) list.sort((a, b) => a.index - b.index);
  const ranked = scored
    .filter((s) => s.score > 0 && answerable(s, code) && (s.lexical > 0 || !anyShared))
    .sort((a, b) => b.score - a.score);
  const best = ranked[0];
  if (!best) return { text: '', sentences: [] };
  const passages = [passageAround(best, bySource.get(best.source)!, opts)];
  const saidTerms = new Set(passages[0]!.flatMap((s) => [...contentTerms(s.text)]));
  const heldConcepts = new Set(passages[0]!.flatMap((s) => s.concepts ?? []));
  const related = passages[0]!.some((s) => s.relation);
  const anchorShare = Math.max(...passages[0]!.map((s) => s.lexical));
  const nearly = Math.max(opts.cutoff, SECOND_NEARLY);
  const defined = passages[0]!.some((s) => s.defines);
  for (const s of ranked) {
    if (s.score < best.score * (nearly - COMPLETION_ALLOWANCE)) break;
    if (s.source === best.source) continue;
    const terms = contentTerms(s.text);
    const fresh = [...terms].filter((t) => !saidTerms.has(t)).length;
    // it has to add something: most of its content words are new
    if (terms.size === 0 || fresh / terms.size < 0.5) continue;
    // and be nearly as good, or bring what the first passage lacks: a question concept none of its sentences
    // holds, or the asked-for relation
    const bringsConcept = (s.concepts ?? []).some((c) => !heldConcepts.has(c));
    const completes = bringsConcept || (opts.asks && s.relation && !related);
    if (s.score < best.score * nearly && !completes) continue;
    // after a definition (or for a question that is only a name), a second passage adds to it only when it too is
    // about the subject (defines it or says something of it as its subject); one naming it in passing ("For LRP,
    // the gradient of MaxPool ...") does not
    if ((defined || options.name !== undefined) && !s.about) continue;
    // a relation alone must be about the question (issue 24: a reason about the stabilizer, naming only
    // "epsilon", joined the answer to when to use alpha-beta instead of epsilon, at 80% of the best score)
    if (!bringsConcept && s.relation && !related && s.lexical < anchorShare * ABOUT_SHARE) continue;
    passages.push(passageAround(s, bySource.get(s.source)!, opts, saidTerms));
    break;
  }
  // the passage that answers stands first: a second one that holds the asked-for relation (the instruction, the
  // reason, ...) which the first lacks goes before it, the first then adds to it
  if (passages.length === 2 && opts.asks && !related && passages[1]!.some((s) => s.relation))
    passages.reverse();
  const sentences: AnswerSentence[] = [];
  for (const passage of passages) {
    const anchor = passage.reduce((a, b) => (b.score > a.score ? b : a));
    passage.forEach((s, i) => {
      const src = sources[s.source - 1]!;
      const code = s.kind === 'code';
      const body = code ? codeAsWritten(s, src) : s.text.replace(/\s+/g, ' ').trim();
      const last = i === passage.length - 1;
      sentences.push({
        text: last ? `${body}${code ? '\n' : ' '}${src.citation}` : body,
        kind: code ? 'code' : 'prose',
        ...(last ? { citation: src.citation } : {}),
        citations: [s.source],
        quote: { source: s.source, start: s.start, end: s.end },
        highlight: s === anchor || s.score >= anchor.score * opts.cutoff,
      });
    });
  }
  const text = answerText(sentences);
  const definedHere = passages.some((p) => p.some((s) => s.defines));
  return options.name !== undefined && !definedHere
    ? { text, sentences, undefinedName: options.name }
    : { text, sentences };
}
