import type { ScoredSentence } from './sentence-scorer.js';
import type { Source } from './source.js';

/** Options of the extractive answer. */
export interface ExtractiveOptions {
  /** At most this many sentences; default 3. */
  readonly maxSentences?: number;
  /** Keep sentences scoring at least this share of the best one; default 0.75. */
  readonly relativeCutoff?: number;
}

function jaccard(a: string, b: string): number {
  const wa = new Set(a.toLowerCase().split(/\W+/).filter(Boolean));
  const wb = new Set(b.toLowerCase().split(/\W+/).filter(Boolean));
  let inter = 0;
  for (const w of wa) if (wb.has(w)) inter++;
  return inter / (wa.size + wb.size - inter || 1);
}

/**
 * Composes an answer from the best source sentences (no language model): the top sentence, then others
 * that score close to it and do not repeat it, each followed by its citation `[file, p. N]`.
 */
export function composeExtractiveAnswer(
  scored: readonly ScoredSentence[],
  sources: readonly Source[],
  options: ExtractiveOptions = {},
): { text: string; sentences: { text: string; citations: number[] }[] } {
  const max = options.maxSentences ?? 3;
  const cutoff = options.relativeCutoff ?? 0.75;
  // long run-on "sentences" (tables, lists without punctuation) are worth less as answers
  const worth = (s: ScoredSentence) =>
    s.score * Math.min(1, (40 / Math.max(1, s.text.split(/\s+/).length)) ** 0.5);
  const ranked = [...scored].filter((s) => s.text.length >= 12).sort((a, b) => worth(b) - worth(a));
  const best = ranked[0];
  if (!best) return { text: '', sentences: [] };
  const picked: ScoredSentence[] = [best];
  for (const s of ranked.slice(1)) {
    if (picked.length >= max || worth(s) < worth(best) * cutoff) break;
    if (picked.some((p) => jaccard(p.text, s.text) > 0.5)) continue;
    picked.push(s);
  }
  const sentences = picked.map((s) => {
    const src = sources[s.source - 1]!;
    const body = s.text.replace(/\s+/g, ' ').trim();
    return { text: `${body} ${src.citation}`, citations: [s.source] };
  });
  return { text: sentences.map((s) => s.text).join(' '), sentences };
}
