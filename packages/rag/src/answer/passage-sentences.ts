import type { BlockKind } from '../ingest/block.js';
import { splitSentences } from '../text/sentences.js';
import type { Chunk } from '../types.js';

/** A sentence (or a table row, list item, heading or code block, taken whole; or a footnote's sentence) of a chunk. */
export interface PassageSentence {
  readonly text: string;
  /** Span in the chunk text. */
  readonly start: number;
  readonly end: number;
  readonly kind: BlockKind;
  /** Index of the block in the chunk. */
  readonly block: number;
}

/**
 * The sentences of a chunk by its blocks: prose blocks split into sentences; headings, table rows and code
 * blocks whole. A chunk without block spans is read as paragraphs separated by blank lines.
 */
export function chunkSentences(chunk: Pick<Chunk, 'text' | 'blocks'>): PassageSentence[] {
  const blocks =
    chunk.blocks ??
    [...chunk.text.matchAll(/[^\n]+(?:\n(?!\s*\n)[^\n]*)*/g)].map((m) => ({
      kind: 'paragraph' as const,
      start: m.index,
      end: m.index + m[0].length,
    }));
  const out: PassageSentence[] = [];
  blocks.forEach((b, block) => {
    const text = chunk.text.slice(b.start, b.end);
    if (b.kind === 'code' || b.kind === 'heading' || b.kind === 'table-row') {
      if (text.trim()) out.push({ text: text.trim(), start: b.start, end: b.end, kind: b.kind, block });
      return;
    }
    for (const s of splitSentences(text)) {
      out.push({ text: s.text, start: b.start + s.start, end: b.start + s.end, kind: b.kind, block });
    }
  });
  return out;
}

// A sentence that starts like this leans on the one before it ("However, ...", "Dabei ..."). The opening ends
// where no letter follows (not \b, which takes an umlaut for a border: "Eröffnet" is not "Er").
const LEANS_BACK =
  /^(however|but|the latter|the former|in the meantime|meanwhile|the (?:command|example|code|call|method|function|steps?) above|this|these|that|those|it|its|they|their|thus|therefore|hence|so|also|moreover|furthermore|in contrast|instead|otherwise|such|here|then|both|unlike|in this case|in that case|if so|to do so|in doing so|to this end|to (?:resolve|fix|solve|avoid|address|prevent|circumvent|work around) (?:this|that|these|it|the (?:issue|problem|error|bug))|um (?:dies|das|dieses problem|das problem|den fehler|diesen fehler) zu|as a result|for this reason|wenn dies|wenn das|falls dies|falls das|in diesem fall|in dem fall|dazu|hierzu|dafür|dies|diese|dieser|dieses|das|dabei|damit|dadurch|daher|deshalb|deswegen|jedoch|allerdings|aber|außerdem|zudem|sie|er|es|hierbei|hierfür|somit|stattdessen|trotzdem|ebenso|letztere[rs]?|erstere[rs]?)(?![\p{L}\p{N}_])/iu;

// The same connectives after the first words: German puts them behind the verb ("Fehler sind jedoch oft ...",
// "Das Modell ist daher ..."), English sets them off by commas ("Errors, however, are ...").
const LEANS_BACK_INSIDE_DE =
  /^((?:[\p{L}\p{N}%.,-]+\s+){1,4})(?:jedoch|allerdings|daher|deshalb|deswegen|dennoch|trotzdem|somit|folglich|nämlich)(?![\p{L}\p{N}_])/iu;
const LEANS_BACK_INSIDE_EN =
  /^[^,.;:!?]{1,60},\s*(?:however|therefore|though|in turn|in contrast|instead|as a result|for this reason),/iu;
// After a comma or "und"/"oder" the connective joins two clauses of its own sentence ("Das Verfahren ist schnell,
// jedoch ungenau.", "Das Modell ist klein und daher schnell."): it points at the first clause, not back.
const JOINS_OWN_CLAUSE = /(?:,|(?<![\p{L}\p{N}_])(?:und|oder|sowie))\s+$/iu;

/**
 * Whether a sentence refers to the one before it: by how it opens ("However, ...", "The latter ...", "Dabei ...")
 * or by a connective among its first words ("Fehler sind jedoch ...", "Errors, however, ..."), unless that one
 * joins two clauses of the sentence itself ("..., jedoch ungenau").
 */
export function leansBack(text: string): boolean {
  const t = text.trim();
  if (LEANS_BACK.test(t) || LEANS_BACK_INSIDE_EN.test(t)) return true;
  const inside = LEANS_BACK_INSIDE_DE.exec(t);
  return inside !== null && !JOINS_OWN_CLAUSE.test(inside[1]!);
}
