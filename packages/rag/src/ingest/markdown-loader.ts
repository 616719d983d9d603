import type { SourceUnit } from './document.js';

/** A Markdown file split at its headings. */
export interface MarkdownSections {
  readonly title?: string;
  readonly sections: readonly SourceUnit[];
}

const HEADING = /^(#{1,6})[ \t]+(.+?)[ \t#]*$/;
const FENCE = /^\s*(```|~~~)/;

function frontMatterTitle(text: string): { title?: string; end: number } {
  if (!text.startsWith('---\n') && !text.startsWith('---\r\n')) return { end: 0 };
  const close = text.indexOf('\n---', 4);
  if (close < 0) return { end: 0 };
  const block = text.slice(4, close);
  const m = /^title:\s*["']?(.+?)["']?\s*$/m.exec(block);
  const lineEnd = text.indexOf('\n', close + 1);
  const end = lineEnd < 0 ? text.length : lineEnd + 1;
  return m?.[1] ? { title: m[1], end } : { end };
}

function plainHeading(text: string): string {
  return text
    .replace(/<[^>]+>/g, '')
    .replace(/[`*_]/g, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim();
}

/**
 * Splits Markdown at ATX headings (`#` .. `######`, not inside code fences). Each section starts with its
 * heading line and carries the heading path; offsets index the file text. The title is the front-matter
 * `title:` or the first level-1 heading.
 */
export function splitMarkdown(text: string): MarkdownSections {
  const fm = frontMatterTitle(text);
  let title = fm.title;
  const sections: SourceUnit[] = [];
  const path: string[] = [];
  let inFence = false;
  let sectionStart = fm.end;
  let sectionPath = '';
  const close = (end: number) => {
    const body = text.slice(sectionStart, end);
    if (/[\p{L}\p{N}]/u.test(body)) {
      sections.push(
        sectionPath
          ? { text: body, offset: sectionStart, section: sectionPath }
          : { text: body, offset: sectionStart },
      );
    }
  };
  let pos = fm.end;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    const lineEnd = nl < 0 ? text.length : nl;
    const line = text.slice(pos, lineEnd).replace(/\r$/, '');
    if (FENCE.test(line)) inFence = !inFence;
    const m = inFence ? null : HEADING.exec(line);
    if (m) {
      close(pos);
      const level = m[1]!.length;
      const heading = plainHeading(m[2]!);
      path.length = level - 1;
      path[level - 1] = heading;
      sectionPath = path.filter(Boolean).join(' > ');
      sectionStart = pos;
      if (title === undefined && level === 1 && heading) title = heading;
    }
    pos = lineEnd + 1;
  }
  close(text.length);
  return title === undefined ? { sections } : { title, sections };
}
