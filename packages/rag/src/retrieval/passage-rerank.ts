import { chunkSentences } from '../answer/passage-sentences.js';
import { titleFromName } from '../ingest/load-document.js';
import { type AnalyzeOptions, analyze } from '../text/analyzer.js';
import type { QueryConcept } from '../text/query.js';
import type { Chunk } from '../types.js';

/** Options of {@link passageCoverage}. */
export interface PassageCoverageOptions extends AnalyzeOptions {
  /** Sentences in a window; default 2. */
  readonly window?: number;
}

/** How strongly a set of terms holds a concept: its best matching term's weight (a translation counts less). */
function strength(concept: QueryConcept, terms: ReadonlySet<string>): number {
  let best = 0;
  for (const t of concept.terms) if (terms.has(t.term) && t.weight > best) best = t.weight;
  return Math.min(1, best);
}

/**
 * The share of a question's concepts (weighted by `weights`, e.g. their IDF) that one passage of the chunk
 * holds together: the best window of `window` consecutive sentences (code blocks left out; the text and its
 * footnotes never in one window). A chunk that
 * mentions the question's words in different places scores lower than one with a passage that holds them
 * together, which is what an answer quotes. Concepts that the chunk's title, section heading or file name hold
 * name the document, not a passage, and are left out; with no other concept the coverage is 1. The file name
 * counts because a title from front matter or a first heading often leaves out the product ("Algorithm
 * Descriptions" in `captum-attribution-algorithms.md`): without it, a question about a method "in Captum" left the
 * method's own section, whose text need not say "Captum" again, at coverage 0 behind chunks of other documents.
 */
export function passageCoverage(
  chunk: Chunk,
  concepts: readonly QueryConcept[],
  weights: readonly number[],
  options: PassageCoverageOptions = {},
): number {
  const language = chunk.metadata.language;
  const naming = new Set(
    analyze(
      `${chunk.metadata.title}\n${chunk.metadata.section ?? ''}\n${titleFromName(chunk.metadata.file)}`,
      language,
      options,
    ),
  );
  const asked = concepts.flatMap((c, k) => (strength(c, naming) > 0 ? [] : [{ c, w: weights[k] ?? 0 }]));
  const total = asked.reduce((s, a) => s + a.w, 0);
  if (asked.length === 0 || total <= 0) return 1;
  // a passage never runs from the text into its footnotes or out of them (as an answer's passage does not): the
  // text and each run of notes make windows apart
  const runs: Set<string>[][] = [];
  let note: boolean | undefined;
  for (const s of chunkSentences(chunk)) {
    if (s.kind === 'code') continue;
    if ((s.kind === 'note') !== note) runs.push([]);
    note = s.kind === 'note';
    runs.at(-1)!.push(new Set(analyze(s.text, language, options)));
  }
  const size = Math.max(1, options.window ?? 2);
  let best = 0;
  for (const sentences of runs.length > 0 ? runs : [[]]) {
    for (let i = 0; i < Math.max(1, sentences.length - size + 1); i++) {
      const terms = new Set(sentences.slice(i, i + size).flatMap((s) => [...s]));
      const held = asked.reduce((s, a) => s + a.w * strength(a.c, terms), 0) / total;
      if (held > best) best = held;
    }
  }
  return best;
}

/**
 * The share of a question's concepts (weighted by `weights`) that the heading opening the chunk holds: the
 * heading blocks before its first text (a Markdown section's first chunk, or a PDF chunk that a heading opens).
 * Concepts the document's title or file name hold are left out (they choose the document, as in
 * {@link passageCoverage}); 0 when the chunk opens with no heading or no other concept is asked. A heading that
 * names what the question asks ("9.1 In das Debian-Archiv hochladen" for "How do I upload a package to
 * Debian?") is strong evidence for the text it heads, which may say it in other words than the question.
 */
export function headingCoverage(
  chunk: Chunk,
  concepts: readonly QueryConcept[],
  weights: readonly number[],
  options: AnalyzeOptions = {},
): number {
  const blocks = chunk.blocks ?? [];
  let end = 0;
  while (end < blocks.length && blocks[end]!.kind === 'heading') end++;
  if (end === 0 || end === blocks.length) return 0;
  const language = chunk.metadata.language;
  const naming = new Set(
    analyze(`${chunk.metadata.title}\n${titleFromName(chunk.metadata.file)}`, language, options),
  );
  const heading = new Set(
    analyze(
      blocks
        .slice(0, end)
        .map((b) => chunk.text.slice(b.start, b.end))
        .join('\n'),
      language,
      options,
    ),
  );
  let total = 0;
  let held = 0;
  for (const [k, c] of concepts.entries()) {
    const w = weights[k] ?? 0;
    if (w <= 0 || strength(c, naming) > 0) continue;
    total += w;
    held += w * strength(c, heading);
  }
  return total > 0 ? held / total : 0;
}
