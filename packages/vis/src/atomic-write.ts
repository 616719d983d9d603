import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CrpError } from '@crp/common';

/**
 * Writes a file atomically: the bytes go to a temporary file in the same directory (created if missing), which
 * is flushed and then renamed over `path`. Readers see the old file or the whole new one, never a part.
 *
 * @throws CrpError `write-failed` (the temporary file is removed).
 */
export async function writeFileAtomic(path: string, contents: Uint8Array | string): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await mkdir(dir, { recursive: true });
    const handle = await open(temp, 'wx');
    try {
      await handle.writeFile(contents);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    const reason = err instanceof Error ? err.message : String(err);
    throw new CrpError('write-failed', `could not write ${path}: ${reason}`, { cause: err });
  }
}
