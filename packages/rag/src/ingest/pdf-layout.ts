import type { Block } from './block.js';
import { squash } from './block.js';

/** A text item of a PDF page as pdf.js gives it (only what the layout needs). */
export interface PdfTextItem {
  readonly str: string;
  readonly hasEOL?: boolean;
  /** Baseline position (PDF units, y grows upwards). */
  readonly x: number;
  readonly y: number;
  /** Advance width (PDF units); when pdf.js gives it, line ends can be told from line wraps. */
  readonly width?: number;
  /** Glyph height; 0 for pure spacing items. */
  readonly height: number;
  /** Whether the item's font is monospace (code). */
  readonly mono?: boolean;
}

/** A line of a page. */
export interface PdfLine {
  readonly text: string;
  readonly x: number;
  /** Where the line's last glyph ends, when the items' widths are known. */
  readonly right?: number;
  readonly y: number;
  readonly height: number;
  readonly mono: boolean;
}

/** What {@link dehyphenate} asks of a lexicon (see `hyphenLexicon` over the cross-lingual dictionary). */
export interface HyphenLexicon {
  /** Whether a lower-case word is a word of English or German (a split word that is one is joined). */
  isWord(word: string): boolean;
  /**
   * Whether a lower-case word may stand as a part of a hyphenated compound: an English word (German writes
   * such compounds closed, "Relevanz-\nausbreitung" is "Relevanzausbreitung").
   */
  isCompoundPart(word: string): boolean;
}

/**
 * Joins words that a line break split with a hyphen ("wie-\nderherstellen" -> "wiederherstellen");
 * keeps the hyphen of compounds whose second part starts upper case ("Debian-\nPaket" -> "Debian-Paket").
 * With a lexicon, a lower-case split also keeps its hyphen when the joined form is not a word but both parts
 * are ("rule-\nbased" -> "rule-based", not "rulebased"); without one every lower-case split is joined.
 */
export function dehyphenate(text: string, lexicon?: HyphenLexicon): string {
  return text
    .replace(
      /(\p{L}*)(\p{Ll})-[ \t]*\n[ \t]*(\p{Ll})(\p{L}*)/gu,
      (_m, a: string, b: string, c: string, d: string) => {
        const left = a + b;
        const right = c + d;
        const keep =
          lexicon !== undefined &&
          !lexicon.isWord((left + right).toLowerCase()) &&
          lexicon.isCompoundPart(left.toLowerCase()) &&
          lexicon.isCompoundPart(right.toLowerCase());
        return keep ? `${left}-${right}` : left + right;
      },
    )
    .replace(/(\p{L})-[ \t]*\n[ \t]*(\p{Lu})/gu, '$1-$2');
}

const SUPERSCRIPT_DIGITS = '⁰¹²³⁴⁵⁶⁷⁸⁹';
const MARKER_ITEM = new RegExp(`^(?:\\d{1,3}|[${SUPERSCRIPT_DIGITS}]{1,3})$`);
// what a footnote marker follows: a word of two letters or more, perhaps ending a sentence, or a closing bracket
// or quote ("al.3", "(2017)4", "wurden.11"). A single letter before a raised digit is a power in a formula ("ℝ3"),
// and so is a name of a variable or file ("grid_size2", "libfoo.so.1"): the word must be letters from its start.
const WORD_BEFORE_MARKER = '(?:^|(?<=[\\s(„"“»]))[\\p{L}\'’-]*\\p{L}\\p{L}[.,;:!?]?|[)\\]"”’]';
const MARKER_HOST = new RegExp(`(?:${WORD_BEFORE_MARKER})$`, 'u');

/**
 * Whether `item` is a footnote marker set after `before` (the glyph item before it on its line): one to three
 * digits in a smaller font on a raised baseline after a word or a sentence end. Code (monospace) never has them.
 */
function isMarkerItem(item: PdfTextItem, before: PdfTextItem | undefined): boolean {
  if (!before || before.mono || item.mono || !MARKER_ITEM.test(item.str.trim())) return false;
  return (
    item.height > 0 &&
    item.height <= 0.85 * before.height &&
    item.y >= before.y + 0.15 * before.height &&
    MARKER_HOST.test(before.str.trimEnd())
  );
}

/**
 * Groups a page's text items into lines (pdf.js marks line ends with `hasEOL`). Footnote markers set as raised,
 * smaller digits after a word (see `isMarkerItem`) are left out: glued to the word they made "al6".
 */
export function pdfLines(items: readonly PdfTextItem[]): PdfLine[] {
  const lines: PdfLine[] = [];
  let parts: PdfTextItem[] = [];
  const flush = () => {
    parts = parts.filter((p, i) => {
      const before = parts.slice(0, i).findLast((q) => q.height > 0 && q.str.trim());
      return !isMarkerItem(p, before);
    });
    const text = parts
      .map((p) => p.str)
      .join('')
      .replace(/[ \t\u00a0]+/g, ' ')
      .trim();
    const glyphs = parts.filter((p) => p.height > 0 && p.str.trim());
    if (text && glyphs.length) {
      const widths = glyphs.every((p) => p.width !== undefined && p.width > 0);
      lines.push({
        text,
        x: Math.min(...glyphs.map((p) => p.x)),
        ...(widths ? { right: Math.max(...glyphs.map((p) => p.x + p.width!)) } : {}),
        y: glyphs[0]!.y,
        height: Math.max(...glyphs.map((p) => p.height)),
        mono: glyphs.every((p) => p.mono),
      });
    }
    parts = [];
  };
  for (const it of items) {
    parts.push(it);
    if (it.hasEOL) flush();
  }
  flush();
  return lines;
}

const median = (xs: readonly number[]) => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

const BULLET = /^([•▪◦●○■–-]|\d{1,3}[.)]|[a-z][.)])\s+/;

/**
 * Running headers and footers: among the first two and last two lines of each page, those that repeat (digits
 * taken as `#`, so page numbers do not matter) on at least half of the pages, and on 3 or more.
 */
export function runningLines(pages: readonly (readonly PdfLine[])[]): Set<string> {
  const count = new Map<string, number>();
  for (const lines of pages) {
    const seen = new Set<string>();
    const edges = lines.length <= 4 ? lines : [...lines.slice(0, 2), ...lines.slice(-2)];
    for (const l of edges) {
      if (l.text.length > 120) continue;
      const key = l.text.replace(/\d+/g, '#');
      if (seen.has(key)) continue;
      seen.add(key);
      count.set(key, (count.get(key) ?? 0) + 1);
    }
  }
  const min = Math.max(3, Math.ceil(pages.length / 2));
  return new Set([...count].filter(([k, n]) => n >= min && k !== '#').map(([k]) => k));
}

/**
 * Whether the break between `prev` and `line` was made by the writer, not by the line filling up: `prev` ends
 * with room to spare for `line`'s first word (plus a glyph height of slack for the estimate), `line` starts upper
 * case or with a digit, and `prev` ends neither a sentence (the splitter sees those) nor a word split by a hyphen.
 * Bullets that the PDF draws as graphics leave exactly this: a list of items glued into one "sentence" (zennit's
 * list of composites). `columnRight` is where the lines of `prev`'s column end.
 */
function writersBreak(prev: PdfLine, line: PdfLine, columnRight: number): boolean {
  if (prev.right === undefined || line.right === undefined) return false;
  if (/[.!?\-\u00ad]$/.test(prev.text) || !/^[\p{Lu}\p{N}]/u.test(line.text)) return false;
  const firstWord = /^\S+/.exec(line.text)![0];
  const charWidth = (line.right - line.x) / line.text.length;
  return columnRight - prev.right >= (firstWord.length + 1) * charWidth + line.height;
}

/**
 * Where the lines of `line`'s column end: the 90th percentile of the right ends of the lines it overlaps
 * horizontally (not the largest: an address that runs into the margin would make every line look short).
 */
function columnRightOf(line: PdfLine, lines: readonly PdfLine[]): number {
  if (line.right === undefined) return 0;
  const rights: number[] = [];
  for (const l of lines)
    if (l.right !== undefined && l.x < line.right && line.x < l.right) rights.push(l.right);
  rights.sort((a, b) => a - b);
  return rights[Math.floor(0.9 * (rights.length - 1))] ?? line.right;
}

const superscriptFree = (marker: string) =>
  marker.replace(/[⁰¹²³⁴⁵⁶⁷⁸⁹]/g, (d) => String(SUPERSCRIPT_DIGITS.indexOf(d)));
// a footnote's own text opens with its number glued to it or a space away ("3Bei einem ...", "⁴Dies ist ...")
const FOOTNOTE_START = /^(\d{1,3}|[⁰¹²³⁴⁵⁶⁷⁸⁹]{1,3}) ?(?=[\p{L}"„»“(])/u;
// a marker in running text: glued to a word or a sentence end ("wurden.11 Sie", "al6"), or a space after a
// sentence end ("ersetzt. 2"); never after a digit ("Python 3.11", "Tabelle 2")
const GLUED_MARKER = new RegExp(
  `(?<=${WORD_BEFORE_MARKER})(\\d{1,3}|[${SUPERSCRIPT_DIGITS}]{1,3})(?=[\\s,;:.]|$)`,
  'gu',
);
const SPACED_MARKER = /(?<=(?:^|\s)[\p{L}'’-]*\p{L}\p{L}[.!?]) (\d{1,3})(?=\s|$)/gu;

/**
 * The footnotes at the foot of a page and the markers that point at them. The notes are the run of lines in a
 * smaller font than the page's prose that ends the page and opens with a numbered line; a marker is a number
 * in the prose above that is one of theirs, glued to a word or a sentence end. Returns the lines with the markers
 * left out and each note's number taken off, and where the notes begin (`lines.length` when there are none): the
 * notes are a block apart from the prose above (a note's font may differ too little from the prose's to part them).
 */
export function pdfFootnotes(
  lines: readonly PdfLine[],
  bodyHeight: number,
): { lines: PdfLine[]; notesFrom: number } {
  let start = lines.length;
  while (start > 0 && !lines[start - 1]!.mono && lines[start - 1]!.height < 0.95 * bodyHeight) start--;
  const numbers = new Set<string>();
  if (start === lines.length || !FOOTNOTE_START.test(lines[start]!.text))
    return { lines: [...lines], notesFrom: lines.length };
  const out = lines.map((l, i) => {
    if (i < start) return l;
    const m = FOOTNOTE_START.exec(l.text);
    if (!m) return l;
    numbers.add(superscriptFree(m[1]!));
    return { ...l, text: l.text.slice(m[0].length) };
  });
  for (let i = 0; i < start; i++) {
    const l = out[i]!;
    if (l.mono) continue;
    const text = l.text
      .replace(GLUED_MARKER, (m) => (numbers.has(superscriptFree(m)) ? '' : m))
      .replace(SPACED_MARKER, (m, n: string) => (numbers.has(n) ? '' : m));
    if (text !== l.text) out[i] = { ...l, text };
  }
  return { lines: out, notesFrom: start };
}

/** A block so far of one line of at most three words: a term or label, kept with what it names ("Depends"). */
const isLabel = (group: readonly PdfLine[]) => group.length === 1 && group[0]!.text.split(' ').length <= 3;

/**
 * Turns the lines of a page into blocks from their geometry: a new block starts where the gap to the previous
 * line is clearly larger than the page's usual line spacing, where the font size or the monospace-ness
 * changes, at a bullet, or after a line that ends early (see `writersBreak`; a run of such blocks that are no
 * sentences is a list whose bullets the PDF drew as graphics). A short block in a larger font is a heading; a
 * block of monospace lines is code (lines kept); prose lines are joined (hyphenation at line ends undone); the
 * page's footnotes (see {@link pdfFootnotes}) are `note` blocks. Lines in `drop` (running headers and footers, see
 * {@link runningLines}) are left out.
 */
export function pdfPageBlocks(
  lines: readonly PdfLine[],
  drop: ReadonlySet<string> = new Set(),
  lexicon?: HyphenLexicon,
): Block[] {
  const shown = lines.filter((l) => !drop.has(l.text.replace(/\d+/g, '#')));
  const gaps: number[] = [];
  for (let i = 1; i < shown.length; i++) {
    const g = shown[i - 1]!.y - shown[i]!.y;
    if (g > 0) gaps.push(g);
  }
  const lineGap = median(gaps) || 12;
  const bodyHeight =
    median(shown.filter((l) => !l.mono).map((l) => l.height)) || median(shown.map((l) => l.height));
  const { lines: kept, notesFrom } = pdfFootnotes(shown, bodyHeight);
  const groups: PdfLine[][] = [];
  // How far a line could have run: the lines of its column end further only when they are wider things (a
  // table, an address into the margin), so the paragraph's own lines and the two after the break bound it.
  const lineEnd = (i: number) => {
    const near = [...groups.at(-1)!, kept[i]!, kept[i + 1]].flatMap((l) =>
      l?.right === undefined ? [] : [l.right],
    );
    return Math.min(columnRightOf(kept[i - 1]!, kept), Math.max(...near));
  };
  // groups that begin at a writer's break (see `writersBreak`)
  const brokenBefore = new Set<number>();
  // the first group of the page's footnotes: it and every group after it are notes
  let notesGroup = Number.POSITIVE_INFINITY;
  for (const [i, l] of kept.entries()) {
    const prev = kept[i - 1];
    const gap = prev ? prev.y - l.y : 0;
    const newBlock =
      !prev ||
      gap > lineGap * 1.45 ||
      gap < -2 || // a new column or a jump back up
      prev.mono !== l.mono ||
      Math.abs(prev.height - l.height) > 0.15 * Math.max(prev.height, l.height) ||
      (!l.mono && BULLET.test(l.text)) ||
      i === notesFrom;
    const broken = !newBlock && !l.mono && !isLabel(groups.at(-1)!) && writersBreak(prev!, l, lineEnd(i));
    if (broken) brokenBefore.add(groups.length);
    if (i === notesFrom) notesGroup = groups.length;
    if (newBlock || broken) groups.push([l]);
    else groups[groups.length - 1]!.push(l);
  }
  const blocks: Block[] = [];
  for (const [k, g] of groups.entries()) {
    if (g.every((l) => l.mono)) {
      const code = g.map((l) => l.text).join('\n');
      if (code.trim()) blocks.push({ kind: 'code', text: code });
      continue;
    }
    const text = squash(dehyphenate(g.map((l) => l.text).join('\n'), lexicon));
    if (!/[\p{L}\p{N}]/u.test(text)) continue;
    const big = g[0]!.height > bodyHeight * 1.15;
    if (k >= notesGroup) blocks.push({ kind: 'note', text });
    else if (big && g.length <= 3 && text.length <= 200 && !/[.!?]$/.test(text))
      blocks.push({ kind: 'heading', text });
    else if (BULLET.test(text)) blocks.push({ kind: 'list-item', text: text.replace(BULLET, '') });
    // a run of lines ended by the writer, none a sentence: the items of a list whose bullets are graphics
    else if ((brokenBefore.has(k) || brokenBefore.has(k + 1)) && !/[.!?:](\s|$)/.test(text))
      blocks.push({ kind: 'list-item', text });
    else blocks.push({ kind: 'paragraph', text });
  }
  return blocks;
}
