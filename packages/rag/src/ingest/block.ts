/**
 * What a block of a document is; decides how it is chunked, shown and used in answers. A `note` is a footnote
 * (a PDF page's notes, an HTML footnote list): searched with its chunk, and quoted in an answer apart from the text
 * (a passage never runs from the text into a note or out of one).
 */
export type BlockKind = 'heading' | 'paragraph' | 'list-item' | 'table-row' | 'code' | 'quote' | 'note';

/**
 * A block of clean text: a heading, a paragraph, a list item, a table row (cells prefixed with their
 * column header: "Method: Saliency; Forward passes: 1"), a code block (verbatim), a quotation or a footnote.
 */
export interface Block {
  readonly kind: BlockKind;
  readonly text: string;
  /** Heading path the block is in ("Intro > Setup"); a heading's path ends with itself. */
  readonly section?: string;
  /** Heading level 1-6. */
  readonly level?: number;
  /** Language named on a code fence (```python). */
  readonly lang?: string;
}

/** A block's place in a chunk's text. */
export interface ChunkBlock {
  readonly kind: BlockKind;
  readonly start: number;
  readonly end: number;
}

const NAMED: Readonly<Record<string, string>> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
  auml: 'ä',
  ouml: 'ö',
  uuml: 'ü',
  Auml: 'Ä',
  Ouml: 'Ö',
  Uuml: 'Ü',
  szlig: 'ß',
  eacute: 'é',
  egrave: 'è',
  agrave: 'à',
  ccedil: 'ç',
  mdash: '—',
  ndash: '–',
  hellip: '…',
  copy: '©',
  reg: '®',
  trade: '™',
  rarr: '→',
  larr: '←',
  harr: '↔',
  times: '×',
  middot: '·',
  bull: '•',
  laquo: '«',
  raquo: '»',
  lsquo: '‘',
  rsquo: '’',
  ldquo: '“',
  rdquo: '”',
  bdquo: '„',
  deg: '°',
  plusmn: '±',
  le: '≤',
  ge: '≥',
  ne: '≠',
  infin: '∞',
  sum: '∑',
  alpha: 'α',
  beta: 'β',
  gamma: 'γ',
  epsilon: 'ε',
  lambda: 'λ',
  sigma: 'σ',
  phi: 'φ',
};

/** Decodes HTML character references (`&amp;`, `&#228;`, `&#xE4;` and common named ones). */
export function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z][a-z0-9]*);/gi, (m, ref: string) => {
    if (ref[0] === '#') {
      const code =
        ref[1] === 'x' || ref[1] === 'X' ? Number.parseInt(ref.slice(2), 16) : Number(ref.slice(1));
      return Number.isFinite(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : m;
    }
    return NAMED[ref] ?? m;
  });
}

/** Collapses white space to single spaces and trims. */
export const squash = (text: string) => text.replace(/\s+/g, ' ').trim();

/** A table row as text: each cell prefixed with its column header where there is one. */
export function tableRowText(cells: readonly string[], header: readonly string[] | undefined): string {
  const parts: string[] = [];
  cells.forEach((cell, i) => {
    if (!cell) return;
    const h = header?.[i];
    parts.push(h && h !== cell ? `${h}: ${cell}` : cell);
  });
  return parts.join('; ');
}

// Status badges and buttons: images whose address is a badge service or a badge file ("build passing",
// "PyPI version", "Open In Colab"). They say nothing about the document.
const BADGE_URL =
  /(?:^|[/.])(?:shields\.io|badge\.fury\.io|badgen\.net|codecov\.io|travis-ci\.(?:org|com))\b|badge[\w-]*\.svg\b|\/badges?\//i;

/**
 * What an image leaves in the text: its alt text when that is a caption (at least three words, as "Different
 * explanation methods on ImageNet.") and the image is no badge; nothing for labels and file names ("Logo",
 * "Input image.", "IG_eq1", "text") or badges.
 */
export function imageText(alt: string, url: string): string {
  if (BADGE_URL.test(url)) return '';
  return (alt.match(/\p{L}[\p{L}\p{N}'’-]*/gu) ?? []).length >= 3 ? alt : '';
}
