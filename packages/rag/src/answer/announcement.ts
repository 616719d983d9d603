import type { BlockKind } from '../ingest/block.js';

/**
 * "A sentence announces the block after it", one definition for the places that ask: the sentence scorer (does a
 * sentence give the command of a procedure's step?) and the answer's window (may a passage end on this sentence,
 * or does what it announces belong in it?). Both read an announcement alike: a prose sentence (paragraph, list
 * item, quote) ending in ":" or "as follows", "the following", "wie folgt", "folgendermaßen", "im Folgenden",
 * "nachstehend" (a full stop after the words, closing quotes or brackets after either allowed), right before the
 * block in its chunk. What they ask of it differs, and only that is a parameter ({@link AnnouncementRule}).
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
  /**
   * Whether a paragraph cut off right before code ("... can be installed with") announces it: it goes on in the
   * block. In the evaluation corpus such a line is more often a label or a converted heading ("Warning", "DOI",
   * "High budget version") or a formula's lead-in ("..., reads") than a step (about 30 of 41): enough to keep a block
   * with it, not to make a step.
   */
  readonly cutOff: boolean;
  /**
   * Whether a sentence that closes its chunk announces by its ending alone (what it announces is in the next
   * chunk); else an announcement needs its block shown after it.
   */
  readonly atChunkEnd: boolean;
  /** Whether the sentence must give a step of the reader's (`announcesStep`) rather than show a result. */
  readonly step: boolean;
}

/**
 * The scorer's question, also the window's while it grows a procedure's passage: does the sentence announce the
 * command of a step ("Zennit can be installed from PyPI:" before `pip install zennit`)? Only code shown after it
 * in its chunk, and it must give the reader's step.
 */
export const STEP_COMMAND: AnnouncementRule = {
  blocks: new Set<BlockKind>(['code']),
  cutOff: false,
  atChunkEnd: false,
  step: true,
};

/**
 * The window's question: does the sentence announce any block (a code block, a list, a run of table rows), so that
 * a passage ending on it without the block would be cut off? Also prose cut off before code, and at a chunk's end
 * an announcement by its ending alone.
 */
export const ANY_BLOCK: AnnouncementRule = {
  blocks: new Set<BlockKind>(['code', 'list-item', 'table-row']),
  cutOff: true,
  atChunkEnd: true,
  step: false,
};

// a heading, a code block or a table row announces nothing (a table row's ":" is its cell's label)
const ANNOUNCERS: ReadonlySet<BlockKind> = new Set(['paragraph', 'list-item', 'quote']);
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
 * Whether `s` announces the block `next` starts, as `rule` asks: `s` is prose ending as an announcement does (or,
 * when the rule takes it, a paragraph cut off before code), `next` is of a kind the rule brings, and, when the rule
 * asks, `s` gives a step of the reader's. A `next` of another source, or none, means `s` closes its chunk: then an
 * announcement by its ending alone, when the rule takes that.
 */
export function announcesBlock(
  s: AnnouncementPart | undefined,
  next: AnnouncementPart | undefined,
  rule: AnnouncementRule,
): boolean {
  if (!s || !ANNOUNCERS.has(s.kind)) return false;
  const text = s.text.trim();
  const ends = ANNOUNCING_END.test(text);
  const step = () => !rule.step || announcesStep(text);
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
