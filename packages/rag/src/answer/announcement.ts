import type { BlockKind } from '../ingest/block.js';

/**
 * "A sentence announces the block after it", one definition for the two places that ask: the sentence scorer (does
 * a sentence give the command of a procedure's step?) and the answer's window (may a passage end on this sentence,
 * or does what it announces belong in it?). They ask different questions of the same reading, so what differs is a
 * parameter ({@link AnnouncementRule}), not a second pattern.
 */

/** A sentence or block of a source, as the rule reads it (`source`: its source's number, when sources are mixed). */
export interface AnnouncementPart {
  readonly kind: BlockKind;
  readonly text: string;
  readonly source?: number;
}

/** What a caller asks of "announces a block". */
export interface AnnouncementRule {
  /** The kinds of block an announcement brings: a step's command is code; a window keeps any block with its lead-in. */
  readonly blocks: ReadonlySet<BlockKind>;
  /** The kinds of sentence that announce (never a heading nor a code block). */
  readonly from: ReadonlySet<BlockKind>;
  /**
   * How an announcement ends: `colon` only ":"; `words` also "as follows", "the following", "wie folgt",
   * "folgendermaßen", ... (a full stop after them, closing quotes or brackets after either allowed).
   */
  readonly ending: 'colon' | 'words';
  /** Whether prose cut off right before code ("... can be installed with") announces it: it goes on in the block. */
  readonly cutOff: boolean;
  /**
   * Whether a sentence that closes its chunk announces by its ending alone (what it announces is in the next
   * chunk); else an announcement needs its block shown after it.
   */
  readonly atChunkEnd: boolean;
  /** Whether the sentence must give a step of the reader's (`announcesStep`) rather than show a result. */
  readonly step: boolean;
}

const PROSE: ReadonlySet<BlockKind> = new Set(['paragraph', 'list-item', 'quote']);

/**
 * The scorer's question: does the sentence announce the command of a step ("Zennit can be installed from PyPI:"
 * before `pip install zennit`)? Only ":" and only before code in its own chunk, and it must give the reader's step.
 * A table row ending in ":" counts (as it did when the scorer had its own test).
 */
export const STEP_COMMAND: AnnouncementRule = {
  blocks: new Set<BlockKind>(['code']),
  from: new Set<BlockKind>([...PROSE, 'table-row']),
  ending: 'colon',
  cutOff: false,
  atChunkEnd: false,
  step: true,
};

/**
 * The window's question: does the sentence announce any block (a code block, a list, a run of table rows), so that
 * a passage ending on it without the block would be cut off? Prose only; ":" or the words; prose cut off before
 * code; at a chunk's end by its ending alone.
 */
export const ANY_BLOCK: AnnouncementRule = {
  blocks: new Set<BlockKind>(['code', 'list-item', 'table-row']),
  from: PROSE,
  ending: 'words',
  cutOff: true,
  atChunkEnd: true,
  step: false,
};

/**
 * The window's narrower question while it grows a procedure's passage: does the sentence end in ":" right before a
 * code block (any kind of sentence the window holds, a step or not)? Then the block joins the passage as it grows.
 */
export const COLON_BEFORE_CODE: AnnouncementRule = {
  blocks: new Set<BlockKind>(['code']),
  from: new Set<BlockKind>([...PROSE, 'table-row', 'heading', 'code']),
  ending: 'colon',
  cutOff: false,
  atChunkEnd: false,
  step: false,
};

const COLON = /:\s*$/;
// ":" or "as follows", "the following", "wie folgt", ...; closing quotes or brackets may follow
const ANNOUNCING_END =
  /(?::|(?<![\p{L}\p{N}_])(?:as follows|the following|wie folgt|folgendermaßen|im folgenden|nachstehend)\.?)["'\u201d\u2019)\]]*$/iu;
// A sentence ends with one of these (closing quotes or brackets may follow); a prose block that ends otherwise (a
// PDF paragraph cut at a line or a column, "This code will", "..., and") goes on in the next one.
const ENDS_SENTENCE = /[.!?\u2026:;]["'\u201d\u2019)\]]*$/u;

/** Whether a text (trimmed) ends as a sentence does: with a stop, "?", "!", "…", ":" or ";". */
export function endsSentence(text: string): boolean {
  return ENDS_SENTENCE.test(text.trim());
}

/**
 * Whether `s` announces the block `next` starts, as `rule` reads it: `s` is of a kind that announces, ends as an
 * announcement does (or is prose cut off before code, when the rule takes that), `next` is of a kind the rule
 * brings, and, when the rule asks, `s` gives a step of the reader's. A `next` of another source, or none, means
 * `s` closes its chunk: an announcement then only by its ending, when the rule takes that.
 */
export function announcesBlock(
  s: AnnouncementPart | undefined,
  next: AnnouncementPart | undefined,
  rule: AnnouncementRule,
): boolean {
  if (!s || !rule.from.has(s.kind)) return false;
  const text = s.text.trim();
  const ends = rule.ending === 'words' ? ANNOUNCING_END.test(text) : COLON.test(text);
  const step = () => !rule.step || announcesStep(s.text);
  if (!next || next.source !== s.source) return rule.atChunkEnd && ends && step();
  if (!rule.blocks.has(next.kind)) return false;
  const cut = rule.cutOff && s.kind === 'paragraph' && next.kind === 'code' && !ENDS_SENTENCE.test(text);
  return (ends || cut) && step();
}

// A sentence ending in ":" before a code block gives a step of the reader's unless it shows a result: it opens
// with a demonstrative looking back at the step before ("Dieser Aufruf von dh_make erstellt ...:" before `ls -F`'s
// listing, "Dies ist die Datei control, ...:", "Here are its contents:") or says what a file looks like ("..., die so
// aussieht:"), and holds no modal, request or address to the reader ("Dies kann wie folgt erledigt werden:", "So
// erstellen Sie ...:" are steps; "Sie" capitalised, "sie" is "they"); one announcing output never gives a step.
const READER_STEP =
  /\b(?:kann|können|könnte|könnten|sollte|sollten|muss|müssen|darf|dürfen|wir|man|can|could|may|might|should|must|needs?|have to|please|you|we)\b/iu;
const READER_SIE = /\bSie\b/u;
const ANNOUNCES_OUTPUT = /\b(?:output|ausgabe|something like)\b/iu;
const SHOWS_RESULT =
  /^\W*(?:dies|dieser|diese|dieses|this|these|here|hier|so)\b|\b(?:aussieht|aussehen|looks? like)\b/iu;

/** Whether a sentence before a code block tells the reader to run or write it (rather than showing a result). */
export function announcesStep(text: string): boolean {
  return (
    !ANNOUNCES_OUTPUT.test(text) &&
    (READER_STEP.test(text) || READER_SIE.test(text) || !SHOWS_RESULT.test(text))
  );
}
