import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CrpError } from './errors.js';

/** Options of {@link writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /** File mode of a new file; default 0o644. */
  mode?: number;
}

/**
 * Writes a file atomically: the bytes go to a temporary file in the same directory (created if missing), are
 * flushed to disk, and the file is renamed over `path` (then the directory is flushed too). Readers see the
 * old file or the whole new one, never a part; a crash leaves at most a stray `.*.tmp` file.
 *
 * `contents` is a string (UTF-8), bytes, or several byte arrays written one after the other (large files
 * without one big copy).
 *
 * @throws CrpError `write-failed` with the operating system's error as `cause` (the temporary file is removed).
 */
export async function writeFileAtomic(
  path: string,
  contents: string | Uint8Array | readonly Uint8Array[],
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const parts =
    typeof contents === 'string'
      ? [new TextEncoder().encode(contents)]
      : contents instanceof Uint8Array
        ? [contents]
        : contents;
  let renamed = false;
  try {
    await mkdir(dir, { recursive: true });
    const handle = await open(temp, 'wx', options.mode ?? 0o644);
    try {
      for (const part of parts) {
        let offset = 0;
        while (offset < part.byteLength) {
          const { bytesWritten } = await handle.write(part, offset, part.byteLength - offset);
          offset += bytesWritten;
        }
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    renamed = true;
    // the rename itself is durable only once the directory entry is flushed
    const d = await open(dir, 'r').catch(() => undefined);
    if (d !== undefined) {
      await d.sync().catch(() => undefined);
      await d.close();
    }
  } catch (err) {
    if (!renamed) await unlink(temp).catch(() => undefined);
    const reason = err instanceof Error ? err.message : String(err);
    throw new CrpError('write-failed', `could not write ${path}: ${reason}`, {
      cause: err,
      details: { path },
    });
  }
}

/** {@link writeFileAtomic} of `JSON.stringify(value, null, 2)` with a final newline. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}
