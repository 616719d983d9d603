import type { Block } from './block.js';
import { squash } from './block.js';

const BULLET = /^\s*([-*+•▪◦–]|\d{1,3}[.)])\s+/;

/**
 * Plain text (a text file, a PDF page) to blocks: paragraphs at blank lines, lines joined with spaces;
 * lines that start with a bullet or a number become list items.
 */
export function textToBlocks(text: string): Block[] {
  const blocks: Block[] = [];
  for (const para of text.replace(/\r\n?/g, '\n').split(/\n[ \t]*\n/)) {
    let current: { kind: 'paragraph' | 'list-item'; lines: string[] } | undefined;
    const flush = () => {
      if (!current) return;
      const t = squash(current.lines.join(' '));
      if (/[\p{L}\p{N}]/u.test(t)) blocks.push({ kind: current.kind, text: t });
      current = undefined;
    };
    for (const line of para.split('\n')) {
      if (BULLET.test(line)) {
        flush();
        current = { kind: 'list-item', lines: [line.replace(BULLET, '')] };
      } else if (current) current.lines.push(line);
      else current = { kind: 'paragraph', lines: [line] };
    }
    flush();
  }
  return blocks;
}
