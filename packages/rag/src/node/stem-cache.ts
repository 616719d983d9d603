import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '@crp/common/node';
import { rememberStems, STEMMER_ID, stemMemo } from '../text/stemmer.js';
import type { Language } from '../types.js';

const HEADER = `crp-rag stems 1 ${STEMMER_ID}`;
/** The most stems kept on disk (the newest); reading 100,000 takes ~30 ms, stemming them ~6 s. */
const LIMIT = 100_000;

/** The stem memo's file in a cache folder: named after the stemmer, so another stemmer never reads it. */
export function stemCacheFile(cacheDir: string): string {
  return path.join(
    cacheDir,
    `stems-${createHash('sha256').update(STEMMER_ID).digest('hex').slice(0, 12)}.txt`,
  );
}

/**
 * Remembers the stems an earlier `crp-rag` process saved in `cacheDir` (see {@link saveStemCache}); returns how
 * many. A missing, foreign or damaged file is ignored as a whole (0): the words are stemmed again.
 */
export async function loadStemCache(cacheDir: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(stemCacheFile(cacheDir), 'utf8');
  } catch {
    return 0;
  }
  const lines = text.split('\n');
  if (lines[0] !== HEADER || lines.at(-1) !== '') return 0;
  const entries: [Language, string, string][] = [];
  for (let i = 1; i < lines.length - 1; i++) {
    const [language, word, stem, more] = lines[i]!.split('\t');
    if ((language !== 'en' && language !== 'de') || !word || stem === undefined || more !== undefined)
      return 0;
    entries.push([language, word, stem]);
  }
  rememberStems(entries);
  return entries.length;
}

/**
 * Saves this process's stems in `cacheDir` (written atomically) when it computed any: the next process reads
 * them instead of stemming the same words again. A cache folder that cannot be written only costs time.
 */
export async function saveStemCache(cacheDir: string): Promise<void> {
  const { entries, computed } = stemMemo();
  if (computed === 0) return;
  const lines = [HEADER];
  for (const [language, word, stem] of entries.slice(-LIMIT))
    if (!/[\t\n]/.test(word + stem)) lines.push(`${language}\t${word}\t${stem}`);
  await writeFileAtomic(stemCacheFile(cacheDir), `${lines.join('\n')}\n`).catch(() => undefined);
}
