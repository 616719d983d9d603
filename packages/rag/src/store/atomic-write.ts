import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes `parts` to `file` so that readers see either the old or the new content, never a mix: the data
 * goes to a temporary file in the same folder, is flushed to disk, and is renamed over `file`. A crash
 * mid-write leaves the previous file untouched (and at most a stray `*.tmp`).
 */
export async function writeFileAtomic(file: string, parts: readonly Uint8Array[]): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', 0o644);
  let renamed = false;
  try {
    for (const part of parts) {
      let off = 0;
      while (off < part.byteLength) {
        const { bytesWritten } = await handle.write(part, off, part.byteLength - off);
        off += bytesWritten;
      }
    }
    await handle.sync();
    await handle.close();
    await rename(tmp, file);
    renamed = true;
    const d = await open(dir, 'r').catch(() => undefined);
    if (d) {
      await d.sync().catch(() => undefined);
      await d.close();
    }
  } finally {
    if (!renamed) {
      await handle.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
    }
  }
}
