#!/usr/bin/env node
/**
 * Builds dictionary.index from dictionary.json: the byte offsets of the pairs' lines sorted by their German and
 * by their English side, so @crp/rag finds a term by binary search in the file's bytes instead of parsing the
 * JSON and hashing 300,000 pairs at every start (format and reader: packages/rag/src/translate/pair-index.ts).
 *
 *   pnpm --filter @crp/rag build && pnpm --filter @crp/rag-dictionary-de-en build-index
 *
 * Run it after every change of dictionary.json (build-dictionary.mjs does); a test of @crp/rag fails while the
 * committed index does not equal a fresh build.
 */
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const { buildPairIndex } = await import(join(here, '..', '..', 'rag', 'dist', 'translate', 'pair-index.js'));
const out = join(here, '..', 'dictionary.index');
const dictionary = new Uint8Array(readFileSync(join(here, '..', 'dictionary.json')));
// the digest lets @crp/rag/node check the dictionary natively at each start instead of by the JavaScript checksum
const index = buildPairIndex(dictionary, { sha256: createHash('sha256').update(dictionary).digest('hex') });
// atomic: a crash leaves the previous index, never half of one
writeFileSync(`${out}.tmp`, index);
renameSync(`${out}.tmp`, out);
console.log(`wrote ${out} (${index.byteLength} bytes)`);
