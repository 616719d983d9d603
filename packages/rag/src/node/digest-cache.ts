import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '@crp/common/node';

const HEADER = 'crp-rag sha256 1';

/** A file's identity as `stat` sees it: any write changes its size, modification or change time. */
async function identity(file: string): Promise<string> {
  const s = await stat(file, { bigint: true });
  return [s.dev, s.ino, s.size, s.mtimeNs, s.ctimeNs].join(':');
}

/**
 * SHA-256 (hex) of a file's `bytes`, remembered in `cacheDir` by the file's path and identity (device, inode,
 * size, modification and change time, as git decides whether to hash a file again): hashing the 9.7 MB
 * dictionary took ~50 ms of every `crp-rag` process. The identity is taken before and after `read`; when they
 * differ the file changed meanwhile and its bytes are hashed. A missing, foreign or damaged cache file is
 * ignored and written again (atomically); one that cannot be written only costs time.
 */
export async function sha256Remembered(
  file: string,
  read: () => Promise<Uint8Array>,
  cacheDir: string,
): Promise<{ bytes: Uint8Array; sha256: string }> {
  const cache = path.join(cacheDir, 'sha256.txt');
  const name = path.resolve(file);
  const [before, remembered] = await Promise.all([
    identity(file),
    readFile(cache, 'utf8').then(parseCache, () => new Map<string, Remembered>()),
  ]);
  const bytes = await read();
  const after = await identity(file);
  const known = remembered.get(name);
  if (before === after && known?.identity === after) return { bytes, sha256: known.sha256 };
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (before === after && !/[\t\n]/.test(name)) {
    remembered.delete(name);
    remembered.set(name, { identity: after, sha256 });
    // one line per file (a dictionary or two); the newest 32 are kept
    const lines = [HEADER, ...[...remembered].slice(-32).map(([f, r]) => `${r.sha256}\t${r.identity}\t${f}`)];
    await writeFileAtomic(cache, `${lines.join('\n')}\n`).catch(() => undefined);
  }
  return { bytes, sha256 };
}

interface Remembered {
  readonly identity: string;
  readonly sha256: string;
}

function parseCache(text: string): Map<string, Remembered> {
  const lines = text.split('\n');
  const out = new Map<string, Remembered>();
  if (lines[0] !== HEADER || lines.at(-1) !== '') return out;
  for (const line of lines.slice(1, -1)) {
    const [sha256, id, file, more] = line.split('\t');
    if (!sha256 || !/^[0-9a-f]{64}$/.test(sha256) || !id || !file || more !== undefined) return new Map();
    out.set(file, { identity: id, sha256 });
  }
  return out;
}
