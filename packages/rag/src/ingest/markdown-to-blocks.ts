import { type Block, decodeEntities, imageText, squash, tableRowText } from './block.js';
import { htmlToBlocks } from './html-to-blocks.js';

/** Result of {@link markdownToBlocks}. */
export interface MarkdownBlocks {
  /** Front-matter `title:` or the first level-1 heading. */
  readonly title?: string;
  readonly blocks: readonly Block[];
}

const FENCE = /^( {0,3})(`{3,}|~{3,})\s*([\w+.#-]*)/;
const ATX = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*#*[ \t]*$/;
const LIST = /^(\s*)([-*+•]|\d{1,9}[.)])[ \t]+(.*)$/;
const HR = /^ {0,3}([-*_])[ \t]*(?:\1[ \t]*){2,}$/;
const TABLE_SEP = /^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$/;
const REF_DEF = /^ {0,3}\[[^\]]+\]:\s*\S+/;
const HTML_START = /^ {0,3}<(?:!--|\/?[a-zA-Z][\w-]*(?:\s|>|\/>|$))/;

// A Markdown link's destination: no spaces, balanced parentheses one deep, an optional title.
const DEST = String.raw`(?:[^()\s]|\([^)]*\))*(?:\s+"[^"]*")?`;
const IMAGE_LINK = new RegExp(String.raw`\[\s*!\[[^\]]*\]\(${DEST}\)\s*\]\(${DEST}\)`, 'g');
const IMAGE = new RegExp(String.raw`!\[([^\]]*)\]\((${DEST})\)`, 'g');
const LINK = new RegExp(String.raw`\[([^\][]*)\]\(${DEST}\)`, 'g');

/**
 * Markdown links and images to their text: an image that is a link (`[![alt](img)](url)`, a badge or a button)
 * goes whole, an image leaves {@link imageText}, a link its text; the rest of a link whose opening bracket is
 * missing ("... 20.](https://...)") goes too.
 */
export function cleanLinks(text: string): string {
  let t = text.replace(IMAGE_LINK, '');
  t = t.replace(IMAGE, (_m, alt: string, dest: string) => imageText(alt, dest.trim()));
  t = t.replace(/!\[([^\]]*)\]\[[^\]]*\]/g, (_m, alt: string) => imageText(alt, ''));
  t = t.replace(/\[\^[^\]]+\]/g, ''); // footnote references
  for (let i = 0; i < 3; i++) t = t.replace(LINK, '$1');
  t = t.replace(/\[([^\][]+)\]\[[^\]]*\]/g, '$1');
  return t.replace(/\]\(https?:\/\/[^()\s]*\)/g, '');
}

// A line that is only an address (`https://...` or `<https://...>`): a link without words.
const BARE_URL = /^\s*<?(?:https?:\/\/|www\.)\S+?>?\s*$/i;

/**
 * Whether a line of a paragraph or list item is a bare address to drop: not when a sentence runs through it (the
 * line before ends without a stop or colon, the line after goes on in lower case), since where a line breaks
 * must not change the text ("The documentation is at <https://...> and in the repository." on one line keeps it).
 */
function bareAddress(line: string, before: string | undefined, after: string | undefined): boolean {
  if (!BARE_URL.test(line)) return false;
  return !(
    before !== undefined &&
    !/[.:!?;]\s*$/.test(before) &&
    after !== undefined &&
    /^\s*\p{Ll}/u.test(after)
  );
}

/**
 * Markdown inline syntax to plain text: links and images by `cleanLinks`, code spans and emphasis to their
 * content, inline HTML tags removed (`<br>` to a space), footnote marks dropped, entities decoded.
 */
export function cleanInline(text: string): string {
  let t = cleanLinks(text);
  t = t.replace(/<(https?:\/\/[^>\s]+)>/g, '$1');
  t = t.replace(/<br\s*\/?>/gi, ' ');
  t = t.replace(/<img\b[^>]*\balt\s*=\s*"([^"]*)"[^>]*>/gi, ' $1 ');
  t = t.replace(/<\/?[a-zA-Z][\w-]*(?:\s[^<>]*)?\/?>/g, '');
  t = t.replace(/<!--[\s\S]*?-->/g, '');
  t = t.replace(/(`+)(.+?)\1/g, (_m, _f, code: string) => code.trim());
  t = t.replace(/(\*\*|__)(?=\S)(.+?)(?<=\S)\1/g, '$2');
  t = t.replace(/(^|[^\w*])\*(?=\S)([^*]+?)(?<=\S)\*(?!\w)/g, '$1$2');
  t = t.replace(/(^|[^\w])_(?=\S)([^_]+?)(?<=\S)_(?!\w)/g, '$1$2');
  t = t.replace(/~~(.+?)~~/g, '$1');
  t = t.replace(/\\([\\`*_{}[\]()#+\-.!|>~])/g, '$1');
  return squash(decodeEntities(t));
}

function splitRow(line: string): string[] {
  let s = line.trim();
  if (s.startsWith('|')) s = s.slice(1);
  if (s.endsWith('|') && !s.endsWith('\\|')) s = s.slice(0, -1);
  return s.split(/(?<!\\)\|/).map((c) => cleanInline(c.replace(/\\\|/g, '|')));
}

function frontMatter(lines: readonly string[]): { title?: string; end: number } {
  if (lines[0]?.trim() !== '---') return { end: 0 };
  for (let i = 1; i < lines.length; i++) {
    if (lines[i]!.trim() === '---' || lines[i]!.trim() === '...') {
      const title = lines
        .slice(1, i)
        .map((l) => /^title:\s*["']?(.+?)["']?\s*$/.exec(l)?.[1])
        .find(Boolean);
      return title ? { title, end: i + 1 } : { end: i + 1 };
    }
  }
  return { end: 0 };
}

const ADMONITION = /^(\s*)(?:!!!|\?\?\?\+?)\s*[\w-]*(?:\s+"[^"]*")?\s*$/;

/**
 * Unwraps MkDocs/Python-Markdown admonitions (`!!! note "Title"` with an indented body): the marker line goes,
 * the body is dedented so it reads as the text it is instead of as indented code.
 */
function unwrapAdmonitions(lines: readonly string[]): string[] {
  const out: string[] = [];
  let indent: string | undefined;
  for (const line of lines) {
    const m = ADMONITION.exec(line);
    if (m) {
      indent = `${m[1]}    `;
      out.push('');
      continue;
    }
    if (indent !== undefined) {
      if (!line.trim()) {
        out.push('');
        continue;
      }
      if (line.startsWith(indent)) {
        out.push(line.slice(4));
        continue;
      }
      indent = undefined;
    }
    out.push(line);
  }
  return out;
}

/**
 * Parses Markdown (CommonMark and GitHub tables) into clean {@link Block}s: headings (with the heading path
 * as `section`), paragraphs, list items, table rows as "header: cell" text, fenced and indented code
 * verbatim, block quotes, MkDocs admonitions as plain text, and HTML blocks through {@link htmlToBlocks}.
 * Markup never reaches the text.
 */
export function markdownToBlocks(markdown: string): MarkdownBlocks {
  const lines = unwrapAdmonitions(markdown.replace(/\r\n?/g, '\n').split('\n'));
  const fm = frontMatter(lines);
  let title = fm.title;
  const blocks: Block[] = [];
  const path: string[] = [];
  const section = () => (path.length ? path.filter(Boolean).join(' > ') : undefined);
  const push = (b: Omit<Block, 'section'>) => {
    if (b.kind !== 'code' && (!/[\p{L}\p{N}]/u.test(b.text) || BARE_URL.test(b.text))) return;
    const s = section();
    blocks.push(s ? { ...b, section: s } : b);
  };
  const heading = (level: number, raw: string) => {
    const text = cleanInline(raw);
    if (!text) return;
    path.length = level - 1;
    path[level - 1] = text;
    push({ kind: 'heading', text, level });
    if (title === undefined && level === 1) title = text;
  };
  let para: string[] = [];
  let paraKind: 'paragraph' | 'quote' = 'paragraph';
  let item: string[] | undefined;
  let itemIndent = 0;
  let prevBlank = true;
  const flushPara = () => {
    if (para.length) push({ kind: paraKind, text: cleanInline(para.join(' ')) });
    para = [];
    paraKind = 'paragraph';
  };
  const flushItem = () => {
    if (item) push({ kind: 'list-item', text: cleanInline(item.join(' ')) });
    item = undefined;
  };
  const flush = () => {
    flushPara();
    flushItem();
  };
  let i = fm.end;
  while (i < lines.length) {
    const line = lines[i]!;
    const blank = !line.trim();
    const fence = FENCE.exec(line);
    if (fence) {
      flush();
      const [, indent, mark] = fence;
      const lang = fence[3] || undefined;
      const body: string[] = [];
      i++;
      while (i < lines.length && !new RegExp(`^ {0,3}${mark![0]}{${mark!.length},}\\s*$`).test(lines[i]!)) {
        body.push(lines[i]!.startsWith(indent!) ? lines[i]!.slice(indent!.length) : lines[i]!.trimStart());
        i++;
      }
      i++;
      const code = body.join('\n').replace(/\s+$/, '');
      if (code.trim()) push(lang ? { kind: 'code', text: code, lang } : { kind: 'code', text: code });
      prevBlank = false;
      continue;
    }
    if (blank) {
      flushPara();
      if (item && !/^\s+\S/.test(lines[i + 1] ?? '')) flushItem();
      prevBlank = true;
      i++;
      continue;
    }
    // indented code: after a blank line, outside a list item
    if (prevBlank && !item && /^( {4}|\t)/.test(line)) {
      flush();
      const body: string[] = [];
      while (i < lines.length && (/^( {4}|\t)/.test(lines[i]!) || !lines[i]!.trim())) {
        body.push(lines[i]!.replace(/^( {4}|\t)/, ''));
        i++;
      }
      const code = body.join('\n').replace(/\s+$/, '');
      if (code.trim()) push({ kind: 'code', text: code });
      prevBlank = true;
      continue;
    }
    prevBlank = false;
    const atx = ATX.exec(line);
    if (atx) {
      flush();
      heading(atx[1]!.length, atx[2] ?? '');
      i++;
      continue;
    }
    // setext heading: a paragraph line underlined with === or ---
    const next = lines[i + 1] ?? '';
    if (para.length === 0 && !item && /^ {0,3}(=+|-+)\s*$/.test(next) && !LIST.test(line) && !HR.test(line)) {
      if (!HTML_START.test(line) && !line.includes('|')) {
        flush();
        heading(next.trim().startsWith('=') ? 1 : 2, line.trim());
        i += 2;
        continue;
      }
    }
    if (HR.test(line)) {
      flush();
      i++;
      continue;
    }
    if (REF_DEF.test(line) && para.length === 0) {
      i++;
      continue;
    }
    if (line.includes('|') && TABLE_SEP.test(next) && next.includes('-')) {
      flush();
      const header = splitRow(line);
      i += 2;
      while (i < lines.length && lines[i]!.trim() && lines[i]!.includes('|')) {
        const cells = splitRow(lines[i]!);
        if (cells.some(Boolean)) push({ kind: 'table-row', text: tableRowText(cells, header) });
        i++;
      }
      continue;
    }
    if (HTML_START.test(line) && para.length === 0) {
      flush();
      // an HTML block runs to a blank line, or to the closing tag of a table/pre/details/div it opens
      const open = /^\s*<(table|pre|details|div|p|ul|ol|dl|blockquote|figure|center|section)\b/i.exec(
        line,
      )?.[1];
      const body: string[] = [];
      let depth = 0;
      while (i < lines.length) {
        const l = lines[i]!;
        if (open) {
          depth += (l.match(new RegExp(`<${open}\\b`, 'gi')) ?? []).length;
          depth -= (l.match(new RegExp(`</${open}\\s*>`, 'gi')) ?? []).length;
        }
        body.push(l);
        i++;
        if (open ? depth <= 0 : !lines[i]?.trim()) break;
      }
      // GitHub reads Markdown between an HTML block's tags (iNNvestigate's badges sit in a <div>)
      const html = htmlToBlocks((open === 'pre' ? body : body.map(cleanLinks)).join('\n'), path);
      for (const b of html.blocks) {
        if (b.kind === 'heading' && b.level) {
          heading(b.level, b.text);
        } else push(b);
      }
      continue;
    }
    const li = LIST.exec(line);
    if (li) {
      flush();
      item = [li[3]!];
      itemIndent = li[1]!.length + li[2]!.length + 1;
      i++;
      continue;
    }
    const quote = /^ {0,3}>\s?(.*)$/.exec(line);
    if (quote) {
      if (paraKind !== 'quote') flushPara();
      flushItem();
      paraKind = 'quote';
      const inner = quote[1]!;
      const h = ATX.exec(inner);
      if (h) {
        flushPara();
        heading(h[1]!.length, h[2] ?? '');
      } else if (inner.trim()) para.push(inner.replace(/^([-*+]|\d+[.)])\s+/, ''));
      else flushPara();
      i++;
      continue;
    }
    if (item && (/^\s+\S/.test(line) || para.length === 0)) {
      // continuation of the list item (indented, or a lazy continuation line)
      if (
        (line.length - line.trimStart().length >= itemIndent || !prevBlank) &&
        !bareAddress(line, item.at(-1), lines[i + 1])
      )
        item.push(line.trim());
      i++;
      continue;
    }
    if (paraKind === 'quote') flushPara();
    if (!bareAddress(line, para.at(-1), lines[i + 1])) para.push(line.trim());
    i++;
  }
  flush();
  return title === undefined ? { blocks } : { title, blocks };
}
