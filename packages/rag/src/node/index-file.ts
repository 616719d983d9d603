import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CrpError, describeError } from '@crp/common';
import { writeFileAtomic } from '@crp/common/node';
import { decodeSnapshot, encodeSnapshot, INDEX_FILE, type IndexSnapshot } from '../store/snapshot.js';

/** Reads the index of a folder; `undefined` when there is none yet. */
export async function readIndexFile(dir: string): Promise<IndexSnapshot | undefined> {
  const file = path.join(dir, INDEX_FILE);
  let buf: Uint8Array;
  try {
    buf = await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CrpError('read-failed', `Cannot read ${file}: ${describeError(error)}`, {
      cause: error,
      details: { path: file },
    });
  }
  return decodeSnapshot(buf, file);
}

/**
 * Writes the index of a folder atomically (temporary file, fsync, rename): a crash mid-write leaves the
 * previous index readable. The folder is created when missing.
 */
export async function writeIndexFile(dir: string, snapshot: IndexSnapshot): Promise<void> {
  await writeFileAtomic(path.join(dir, INDEX_FILE), encodeSnapshot(snapshot));
}
