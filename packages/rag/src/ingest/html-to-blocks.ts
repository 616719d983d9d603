import { type Block, decodeEntities, imageText, squash, tableRowText } from './block.js';

const DROP_CONTENT = new Set(['script', 'style', 'svg', 'math', 'noscript', 'template', 'iframe']);
const BREAKS = new Set([
  'p',
  'div',
  'section',
  'article',
  'header',
  'footer',
  'main',
  'nav',
  'aside',
  'ul',
  'ol',
  'dl',
  'dt',
  'dd',
  'blockquote',
  'details',
  'summary',
  'figure',
  'figcaption',
  'hr',
  'center',
  'form',
  'fieldset',
  'caption',
]);

/** Result of {@link htmlToBlocks}. */
export interface HtmlBlocks {
  /** `<title>` or the first `<h1>`. */
  readonly title?: string;
  readonly blocks: readonly Block[];
}

const TAG =
  /<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>|<!doctype[^>]*>|<\/?([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s=>/]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?)*)\s*\/?>/gi;

function attr(attrs: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(attrs);
  return m ? decodeEntities(m[1] ?? m[2] ?? m[3] ?? '') : undefined;
}

// the footnotes of a page as the common converters write them: Pandoc (`<section class="footnotes"
// role="doc-endnotes">`), Python-Markdown (`<div class="footnote">`), GitHub (`<section data-footnotes>`), DPUB-ARIA
// (`<aside role="doc-footnote">`)
const FOOTNOTES_CLASS = /(?:^|\s)footnotes?(?:\s|$)/i;
const FOOTNOTES_ROLE = /^doc-(?:endnotes|footnote|endnote)$/i;
const isFootnotes = (attrs: string) =>
  FOOTNOTES_CLASS.test(attr(attrs, 'class') ?? '') ||
  FOOTNOTES_ROLE.test(attr(attrs, 'role') ?? '') ||
  /\sdata-footnotes(?:[\s=]|$)/i.test(attrs);
// a footnote's marker in the text (`<a class="footnote-ref">1</a>`) and its way back (`<a class="footnote-backref">↩</a>`):
// a number glued to a word, an arrow
const isFootnoteLink = (attrs: string) =>
  /(?:^|\s)footnote-(?:ref|backref)(?:\s|$)/i.test(attr(attrs, 'class') ?? '') ||
  /^doc-(?:noteref|backlink)$/i.test(attr(attrs, 'role') ?? '') ||
  /\sdata-footnote-(?:ref|backref)(?:[\s=]|$)/i.test(attrs);

/**
 * Converts HTML (a page, or an HTML block inside Markdown) to clean blocks: headings, paragraphs, list items,
 * table rows with their header cells, code (`<pre>`) verbatim; link text without the link, images by their
 * alt text when it is a caption (`imageText`); a footnote list's text as `note` blocks, the footnote markers and
 * back links left out; scripts, styles, comments and SVG dropped. `sectionPath` is the heading path around the HTML.
 */
export function htmlToBlocks(html: string, sectionPath: readonly string[] = []): HtmlBlocks {
  const blocks: Block[] = [];
  const path = [...sectionPath];
  let title: string | undefined;
  let text = '';
  let drop: string | undefined;
  let pre: { depth: number; text: string; lang?: string } | undefined;
  let heading: { level: number; text: string } | undefined;
  let inTitle = false;
  let li = 0;
  let quote = 0;
  // the element holding the footnotes, while inside it (its tag name and how deep it nests in itself)
  let notes: { name: string; depth: number } | undefined;
  // tables: the current row's cells, the header, whether the current cell is a header cell
  const tables: {
    header?: string[] | undefined;
    row?: string[] | undefined;
    cell?: string | undefined;
    headerRow: boolean;
    rowHasTd: boolean;
  }[] = [];
  const section = () => (path.length ? path.filter(Boolean).join(' > ') : undefined);
  const push = (b: Omit<Block, 'section'>) => {
    const s = section();
    blocks.push(s ? { ...b, section: s } : b);
  };
  const flush = () => {
    const t = squash(text);
    text = '';
    if (!t || !/[\p{L}\p{N}]/u.test(t)) return;
    push({ kind: notes ? 'note' : li > 0 ? 'list-item' : quote > 0 ? 'quote' : 'paragraph', text: t });
  };
  const addText = (s: string) => {
    const table = tables[tables.length - 1];
    if (heading) heading.text += s;
    else if (table?.cell !== undefined) table.cell += s;
    else text += s;
  };
  let last = 0;
  for (const m of html.matchAll(TAG)) {
    const between = html.slice(last, m.index);
    last = m.index + m[0].length;
    if (pre) {
      pre.text += between;
    } else if (!drop) {
      if (inTitle) title = squash(decodeEntities(between)) || title;
      else addText(decodeEntities(between));
    }
    const name = m[1]?.toLowerCase();
    if (!name) continue; // comment, doctype
    const closing = m[0][1] === '/';
    if (drop) {
      if (closing && name === drop) drop = undefined;
      continue;
    }
    if (pre) {
      if (name === 'pre') pre.depth += closing ? -1 : 1;
      if (pre.depth === 0) {
        const code = decodeEntities(pre.text).replace(/^\n/, '').replace(/\s+$/, '');
        if (code.trim())
          push(pre.lang ? { kind: 'code', text: code, lang: pre.lang } : { kind: 'code', text: code });
        pre = undefined;
      } else if (name === 'br') pre.text += '\n';
      continue;
    }
    if (
      (DROP_CONTENT.has(name) || (name === 'a' && isFootnoteLink(m[2] ?? ''))) &&
      !closing &&
      !m[0].endsWith('/>')
    ) {
      drop = name;
      continue;
    }
    if (notes && name === notes.name) {
      notes.depth += closing ? -1 : 1;
      if (notes.depth === 0) {
        flush();
        notes = undefined;
        continue;
      }
    } else if (!notes && !closing && BREAKS.has(name) && isFootnotes(m[2] ?? '')) {
      flush();
      notes = { name, depth: 1 };
      continue;
    }
    if (name === 'title') {
      inTitle = !closing;
      continue;
    }
    if (name === 'pre' && !closing) {
      flush();
      const cls = attr(m[2] ?? '', 'class') ?? '';
      const lang = /language-([\w+-]+)/.exec(cls)?.[1];
      pre = lang ? { depth: 1, text: '', lang } : { depth: 1, text: '' };
      continue;
    }
    if (name === 'br') {
      addText(' ');
      continue;
    }
    if (name === 'img') {
      const alt = attr(m[2] ?? '', 'alt');
      const said = alt ? imageText(alt, attr(m[2] ?? '', 'src') ?? '') : '';
      if (said) addText(` ${said} `);
      continue;
    }
    const hm = /^h([1-6])$/.exec(name);
    if (hm) {
      if (!closing) {
        flush();
        heading = { level: Number(hm[1]), text: '' };
      } else if (heading) {
        const t = squash(heading.text);
        const level = heading.level;
        heading = undefined;
        if (t) {
          path.length = Math.max(sectionPath.length, level - 1);
          path[level - 1] = t;
          push({ kind: 'heading', text: t, level });
          if (title === undefined && level === 1) title = t;
        }
      }
      continue;
    }
    if (name === 'table') {
      flush();
      if (!closing) tables.push({ headerRow: false, rowHasTd: false });
      else tables.pop();
      continue;
    }
    const table = tables[tables.length - 1];
    if (table && (name === 'tr' || name === 'td' || name === 'th')) {
      if (name === 'tr' && !closing) {
        table.row = [];
        table.headerRow = true;
        table.rowHasTd = false;
      } else if (name === 'tr' && closing && table.row) {
        const cells = table.row;
        table.row = undefined;
        if (table.headerRow && !table.header && !table.rowHasTd) table.header = cells;
        else if (cells.some(Boolean)) push({ kind: 'table-row', text: tableRowText(cells, table.header) });
      } else if (!closing) {
        if (!table.row) table.row = [];
        table.cell = '';
        if (name === 'td') table.rowHasTd = true;
      } else if (table.cell !== undefined) {
        table.row?.push(squash(table.cell));
        table.cell = undefined;
      }
      continue;
    }
    if (name === 'li') {
      flush();
      li += closing ? -1 : 1;
      if (li < 0) li = 0;
      continue;
    }
    if (name === 'blockquote') {
      flush();
      quote += closing ? -1 : 1;
      if (quote < 0) quote = 0;
      continue;
    }
    if (BREAKS.has(name)) {
      flush();
      continue;
    }
    // inline elements (a, span, code, em, strong, ...): keep their text, separate words at their edges
    if (name === 'td' || name === 'th' || name === 'tr') addText(' ');
  }
  const tail = html.slice(last);
  if (pre) pre.text += tail;
  else if (!drop) addText(decodeEntities(tail));
  if (pre?.text.trim()) push({ kind: 'code', text: decodeEntities(pre.text).trim() });
  flush();
  return title === undefined ? { blocks } : { title, blocks };
}
