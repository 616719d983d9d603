import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describeError } from '@crp/common';
import { FALSE_FRIENDS } from '../translate/false-friends.js';
import type { KeyTailStore } from '../translate/pair-index.js';
import { QueryTranslator } from '../translate/query-translator.js';
import type { ByteSource } from '../translate/written-forms.js';
import { ragCacheDir } from './cache-dir.js';
import { sha256Remembered } from './digest-cache.js';

let loading: Promise<QueryTranslator | undefined> | undefined;

/**
 * The English-German translator from the optional package `@crp/rag-dictionary-de-en` (Ding, GPL-2.0-or-later),
 * or `undefined` when it is not installed (then search is monolingual). Known false friends and stem
 * collisions (`FALSE_FRIENDS`) are left out. Loaded once per process.
 *
 * The package's `dictionary.index` (offsets of the pairs sorted by each language, built from
 * `dictionary.json`) lets the dictionary open without parsing its 10 MB of JSON or building hash tables. When
 * the index is missing or stale, the JSON is parsed instead (same translations, slower) and a warning says
 * how to rebuild it. The package's `forms.txt` (the pairs' words as Ding writes them) is read only when a gloss
 * asks for a written form.
 */
export function loadDefaultTranslator(): Promise<QueryTranslator | undefined> {
  loading ??= (async () => {
    let dir: string;
    try {
      dir = path.dirname(createRequire(import.meta.url).resolve('@crp/rag-dictionary-de-en/package.json'));
    } catch {
      return undefined;
    }
    const options = {
      exclude: FALSE_FRIENDS,
      // the words as written, for glosses: opened when a gloss is made, and only the lines it needs are read
      writtenForms: () => fileBytes(path.join(dir, 'forms.txt')),
      onWrittenFormsError: (error: unknown) =>
        process.emitWarning(`@crp/rag-dictionary-de-en: ${describeError(error)} Glosses show stems instead.`),
    };
    try {
      const file = path.join(dir, 'dictionary.json');
      const [dictionary, index] = await Promise.all([
        sha256Remembered(file, () => readFile(file), ragCacheDir()),
        readFile(path.join(dir, 'dictionary.index')),
      ]);
      // the index is checked against the dictionary's SHA-256, remembered per file (see sha256Remembered)
      return QueryTranslator.fromPairIndex(dictionary.bytes, index, {
        ...options,
        sha256: () => dictionary.sha256,
        keyTails: keyTailFiles(ragCacheDir(), dictionary.sha256),
      });
    } catch (error) {
      process.emitWarning(
        `@crp/rag-dictionary-de-en: ${describeError(error)} Parsing dictionary.json instead (slower).`,
      );
    }
    try {
      const mod = (await import('@crp/rag-dictionary-de-en')) as {
        default: { pairs: string; source: string };
      };
      return QueryTranslator.fromStemPairs(mod.default.pairs, { source: mod.default.source, ...options });
    } catch {
      return undefined;
    }
  })();
  return loading;
}

/**
 * The dictionary's keys filed by their ends (for a gloss's compound senses, `QueryTranslator.endingWith`) kept in
 * `cacheDir`, one file per language named after the dictionary's SHA-256: filing them took 0.1-0.35 s of CPU in the
 * first gloss of every process; reading the file takes a few ms. Written atomically (a temporary file renamed);
 * a folder that cannot be read or written only costs the filing.
 */
export function keyTailFiles(cacheDir: string, dictionarySha256: string): KeyTailStore {
  const file = (language: string) =>
    path.join(cacheDir, `key-tails-${dictionarySha256.slice(0, 16)}-${language}.bin`);
  return {
    read: (language) => {
      try {
        return readFileSync(file(language));
      } catch {
        return undefined;
      }
    },
    write: (language, bytes) => {
      const temp = `${file(language)}.${process.pid}.tmp`;
      try {
        mkdirSync(cacheDir, { recursive: true });
        writeFileSync(temp, bytes);
        renameSync(temp, file(language));
      } catch {
        // a cache that cannot be written: the next process files the keys again
      }
    },
  };
}

/** Random access to a file: the descriptor stays open for the process (a gloss reads a few blocks at a time). */
function fileBytes(file: string): ByteSource {
  const fd = openSync(file, 'r');
  try {
    const byteLength = fstatSync(fd).size;
    return {
      byteLength,
      read: (offset, length) => {
        const out = new Uint8Array(Math.max(0, Math.min(length, byteLength - offset)));
        let done = 0;
        while (done < out.length) {
          const n = readSync(fd, out, done, out.length - done, offset + done);
          if (n === 0) break;
          done += n;
        }
        return out.subarray(0, done);
      },
    };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}
