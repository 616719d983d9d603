import { constants } from 'node:fs';
import { access, readlink, stat } from 'node:fs/promises';
import { basename, dirname, extname, resolve } from 'node:path';
import { CrpError } from '@crp/common';

/** What an operating-system error code means for the person at the command line. */
const REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOENT: 'it does not exist',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'it is a folder, not a file',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exceeded',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'the name is too long',
  EBUSY: 'it is in use',
};

/** A Node.js file-system error (`code`, `syscall`, `path`), as thrown by `node:fs`. */
export interface SystemError extends Error {
  code: string;
  syscall?: string;
  path?: string;
}

/** Whether `err` is an operating-system error of `node:fs` with a code this module can explain. */
export function isSystemError(err: unknown): err is SystemError {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === 'string' && code in REASONS;
}

/** The reason of an operating-system error in words, or its message. */
export function systemReason(err: unknown): string {
  return isSystemError(err) ? REASONS[err.code]! : err instanceof Error ? err.message : String(err);
}

/**
 * The typed error for a file-system error that escaped a command: `not-found` for a missing input,
 * `write-failed` / `read-failed` otherwise, naming the path and the reason (never the stack).
 */
export function fromSystemError(err: SystemError): CrpError {
  const writing = /^(open|write|mkdir|rename|copyfile|unlink|rmdir|symlink|chmod)/.test(err.syscall ?? '');
  const what = err.path === undefined ? '' : ` '${err.path}'`;
  if (err.code === 'ENOENT' && !writing) {
    return new CrpError('not-found', `cannot read${what}: ${REASONS.ENOENT}`, { cause: err });
  }
  const verb = writing ? 'write' : 'read';
  const code = writing ? 'write-failed' : 'read-failed';
  const where = err.code === 'ENOENT' ? 'a parent folder is missing' : REASONS[err.code]!;
  return new CrpError(code, `cannot ${verb}${what}: ${where}`, { cause: err, details: { path: err.path } });
}

/**
 * Where a link that leads nowhere ends: the missing path at the end of its chain of links (a link's relative target
 * resolved from the link's folder); undefined when `path` is no link.
 */
async function danglingTarget(path: string): Promise<string | undefined> {
  let at = path;
  // the operating system gives up after 40 links (ELOOP); so does this
  for (let hop = 0; hop < 40; hop++) {
    const next = await readlink(at).catch(() => undefined);
    if (next === undefined) return at === path ? undefined : at;
    at = resolve(dirname(at), next);
  }
  return at;
}

/**
 * Checks before any work that `path` can be written: as a `file` (its folder is created if missing) or as a
 * `folder` to put files in. Finds the nearest part of the path that exists and asks the operating system
 * whether it may write there, so that a read-only disk, a missing permission or a file where a folder should
 * be is said at once, naming the option and the path, instead of after minutes of work.
 *
 * @throws CrpError `write-failed` with the reason
 */
export async function checkWritable(option: string, path: string, kind: 'file' | 'folder'): Promise<void> {
  const target = resolve(path);
  const refuse = (where: string, reason: string) =>
    new CrpError('write-failed', `${option}: cannot write '${path}': ${reason}${where}`, {
      details: { path },
    });
  const existing = await stat(target).catch(() => undefined);
  if (existing !== undefined) {
    if (kind === 'file' && existing.isDirectory()) throw refuse('', REASONS.EISDIR!);
    if (kind === 'folder' && !existing.isDirectory()) throw refuse('', 'it is a file, not a folder');
    await access(target, constants.W_OK).catch((err: unknown) => {
      throw refuse('', systemReason(err));
    });
    return;
  }
  // the nearest ancestor that exists must be a folder we may write into (the rest is created)
  let parent = target;
  for (;;) {
    const s = await stat(parent).catch((err: unknown) => err as SystemError);
    if (!(s instanceof Error)) {
      if (!s.isDirectory()) throw refuse('', `'${parent}' is a file, not a folder`);
      break;
    }
    if (s.code !== 'ENOENT' && s.code !== 'ENOTDIR') throw refuse(` ('${parent}')`, systemReason(s));
    // a link to a missing folder (an unmounted disk) cannot be created through (mkdir: ENOTDIR, after the
    // work): refuse it here
    const missing = await danglingTarget(parent);
    if (missing !== undefined)
      throw refuse('', `'${parent}' is a link to '${missing}', which does not exist`);
    const up = dirname(parent);
    if (up === parent) break;
    parent = up;
  }
  await access(parent, constants.W_OK).catch((err: unknown) => {
    throw refuse(` ('${parent}')`, systemReason(err));
  });
}

/**
 * Checks before any work that every input file can be read (`what` names them in the message: 'image'), so a
 * missing one among many fails before the outputs of the others are written.
 *
 * @throws CrpError `not-found` for a missing file, `read-failed` for a folder or one without read permission
 */
export async function checkReadable(what: string, paths: readonly string[]): Promise<void> {
  for (const path of paths) {
    const s = await stat(path).catch((err: unknown) => err as SystemError);
    const reason =
      s instanceof Error
        ? systemReason(s)
        : s.isDirectory()
          ? REASONS.EISDIR!
          : await access(path, constants.R_OK).then(
              () => undefined,
              (err: unknown) => systemReason(err),
            );
    if (reason === undefined) continue;
    const missing = s instanceof Error && s.code === 'ENOENT';
    throw new CrpError(
      missing ? 'not-found' : 'read-failed',
      `cannot read the ${what} '${path}': ${reason}`,
      {
        details: { path },
      },
    );
  }
}

/**
 * A distinct output name for each input file: its name without the extension, and where two inputs share one,
 * as many of their parent folders as tell them apart (`a/0.png`, `b/0.png` -> `a_0`, `b_0`); the same file given
 * twice gets its occurrence (`0`, `0-2`).
 */
export function outputStems(paths: readonly string[]): string[] {
  const files = [...new Set(paths.map((p) => resolve(p)))];
  const parts = files.map((file) => {
    const segments = file.split(/[\\/]/).filter((s) => s.length > 0);
    segments[segments.length - 1] = basename(file, extname(file));
    return segments;
  });
  const stems = parts.map((segments) => segments[segments.length - 1]!);
  const longest = Math.max(...parts.map((s) => s.length));
  for (let depth = 2; depth <= longest; depth++) {
    const counts = new Map<string, number>();
    for (const s of stems) counts.set(s, (counts.get(s) ?? 0) + 1);
    if ([...counts.values()].every((n) => n === 1)) break;
    for (const [i, segments] of parts.entries()) {
      if (counts.get(stems[i]!)! > 1) stems[i] = segments.slice(-depth).join('_');
    }
  }
  const stemOf = new Map(files.map((file, i) => [file, stems[i]!]));
  const seen = new Map<string, number>();
  return paths.map((p) => {
    const file = resolve(p);
    const n = (seen.get(file) ?? 0) + 1;
    seen.set(file, n);
    return n === 1 ? stemOf.get(file)! : `${stemOf.get(file)!}-${n}`;
  });
}
