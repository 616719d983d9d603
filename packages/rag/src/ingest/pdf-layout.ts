import type { Block } from './block.js';
import { squash } from './block.js';

/** A text item of a PDF page as pdf.js gives it (only what the layout needs). */
export interface PdfTextItem {
  readonly str: string;
  readonly hasEOL?: boolean;
  /** Baseline position (PDF units, y grows upwards). */
  readonly x: number;
  readonly y: number;
  /** Glyph height; 0 for pure spacing items. */
  readonly height: number;
  /** Whether the item's font is monospace (code). */
  readonly mono?: boolean;
}

/** A line of a page. */
export interface PdfLine {
  readonly text: string;
  readonly x: number;
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

/** Groups a page's text items into lines (pdf.js marks line ends with `hasEOL`). */
export function pdfLines(items: readonly PdfTextItem[]): PdfLine[] {
  const lines: PdfLine[] = [];
  let parts: PdfTextItem[] = [];
  const flush = () => {
    const text = parts
      .map((p) => p.str)
      .join('')
      .replace(/[ \t\u00a0]+/g, ' ')
      .trim();
    const glyphs = parts.filter((p) => p.height > 0 && p.str.trim());
    if (text && glyphs.length) {
      lines.push({
        text,
        x: Math.min(...glyphs.map((p) => p.x)),
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
 * Turns the lines of a page into blocks from their geometry: a new block starts where the gap to the previous
 * line is clearly larger than the page's usual line spacing, where the font size or the monospace-ness
 * changes, or at a bullet. A short block in a larger font is a heading; a block of monospace lines is code
 * (lines kept); prose lines are joined (hyphenation at line ends undone). Lines in `drop` (running headers
 * and footers, see {@link runningLines}) are left out.
 */
export function pdfPageBlocks(
  lines: readonly PdfLine[],
  drop: ReadonlySet<string> = new Set(),
  lexicon?: HyphenLexicon,
): Block[] {
  const kept = lines.filter((l) => !drop.has(l.text.replace(/\d+/g, '#')));
  const gaps: number[] = [];
  for (let i = 1; i < kept.length; i++) {
    const g = kept[i - 1]!.y - kept[i]!.y;
    if (g > 0) gaps.push(g);
  }
  const lineGap = median(gaps) || 12;
  const bodyHeight =
    median(kept.filter((l) => !l.mono).map((l) => l.height)) || median(kept.map((l) => l.height));
  const groups: PdfLine[][] = [];
  for (const [i, l] of kept.entries()) {
    const prev = kept[i - 1];
    const gap = prev ? prev.y - l.y : 0;
    const newBlock =
      !prev ||
      gap > lineGap * 1.45 ||
      gap < -2 || // a new column or a jump back up
      prev.mono !== l.mono ||
      Math.abs(prev.height - l.height) > 0.15 * Math.max(prev.height, l.height) ||
      (!l.mono && BULLET.test(l.text));
    if (newBlock) groups.push([l]);
    else groups[groups.length - 1]!.push(l);
  }
  const blocks: Block[] = [];
  for (const g of groups) {
    if (g.every((l) => l.mono)) {
      const code = g.map((l) => l.text).join('\n');
      if (code.trim()) blocks.push({ kind: 'code', text: code });
      continue;
    }
    const text = squash(dehyphenate(g.map((l) => l.text).join('\n'), lexicon));
    if (!/[\p{L}\p{N}]/u.test(text)) continue;
    const big = g[0]!.height > bodyHeight * 1.15;
    if (big && g.length <= 3 && text.length <= 200 && !/[.!?]$/.test(text))
      blocks.push({ kind: 'heading', text });
    else if (BULLET.test(text)) blocks.push({ kind: 'list-item', text: text.replace(BULLET, '') });
    else blocks.push({ kind: 'paragraph', text });
  }
  return blocks;
}
