import { escapeHtml } from '@crp/common';

function safeHref(url: string): string | undefined {
  const trimmed = url.trim();
  if (
    /^(https?:|mailto:|#|\.{0,2}\/|[\w-]+(\.[\w-]+)*(\/|$))/i.test(trimmed) &&
    !/^javascript:/i.test(trimmed)
  ) {
    return trimmed;
  }
  return undefined;
}

function inline(text: string): string {
  const codes: string[] = [];
  let html = escapeHtml(text).replace(/`([^`]+)`/g, (_, code: string) => {
    codes.push(`<code>${code}</code>`);
    return `\u0000${codes.length - 1}\u0000`;
  });
  html = html
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
    .replace(/(^|[^*\w])\*([^*\s][^*]*)\*/g, '$1<em>$2</em>')
    .replace(/(^|[^\w])_([^_\s][^_]*)_(?!\w)/g, '$1<em>$2</em>')
    .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (whole, label: string, href: string) => {
      const url = safeHref(href.replace(/&amp;/g, '&'));
      return url === undefined ? whole : `<a href="${escapeHtml(url)}">${label}</a>`;
    });
  // biome-ignore lint/suspicious/noControlCharactersInRegex: placeholders of code spans
  return html.replace(/\u0000(\d+)\u0000/g, (_, k: string) => codes[Number(k)]!);
}

/**
 * Converts a small, safe subset of Markdown to HTML: paragraphs (blank-line separated), headings `#`..`###`
 * (rendered one level below the section title), `-` / `*` and `1.` lists, `**bold**`, `*italic*` / `_italic_`,
 * `` `code` `` and `[links](https://...)`. Everything else is escaped text; no raw HTML passes through.
 */
export function markdownToHtml(markdown: string): string {
  const blocks: string[] = [];
  let paragraph: string[] = [];
  let list: { ordered: boolean; items: string[] } | undefined;
  const flushParagraph = () => {
    if (paragraph.length > 0) blocks.push(`<p>${inline(paragraph.join(' '))}</p>`);
    paragraph = [];
  };
  const flushList = () => {
    if (list !== undefined) {
      const tag = list.ordered ? 'ol' : 'ul';
      blocks.push(`<${tag}>${list.items.map((i) => `<li>${inline(i)}</li>`).join('')}</${tag}>`);
    }
    list = undefined;
  };
  for (const raw of markdown.replace(/\r\n?/g, '\n').split('\n')) {
    const line = raw.trim();
    const heading = /^(#{1,3})\s+(.*)$/.exec(line);
    const bullet = /^[-*]\s+(.*)$/.exec(line);
    const numbered = /^\d+[.)]\s+(.*)$/.exec(line);
    if (line === '') {
      flushParagraph();
      flushList();
    } else if (heading !== null) {
      flushParagraph();
      flushList();
      const level = heading[1]!.length + 2;
      blocks.push(`<h${level}>${inline(heading[2]!)}</h${level}>`);
    } else if (bullet !== null || numbered !== null) {
      flushParagraph();
      const ordered = numbered !== null;
      if (list !== undefined && list.ordered !== ordered) flushList();
      list ??= { ordered, items: [] };
      list.items.push((bullet ?? numbered)![1]!);
    } else if (list !== undefined && raw.startsWith(' ')) {
      list.items[list.items.length - 1] += ` ${line}`;
    } else {
      flushList();
      paragraph.push(line);
    }
  }
  flushParagraph();
  flushList();
  return blocks.join('\n');
}
