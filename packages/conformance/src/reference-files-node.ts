import { readdir, readFile, stat } from 'node:fs/promises';
import { CrpError, describeError } from '@crp/common';
import type { ReferenceFiles } from './reference-files.js';

function isMissing(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** The reference data on the local file system (the Node CLI and the tests). */
export const nodeFiles: ReferenceFiles = {
  async readText(path) {
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw new CrpError('read-failed', `cannot read ${path}: ${describeError(err)}`, { cause: err });
    }
  },
  async readBytes(path) {
    try {
      return new Uint8Array(await readFile(path));
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw new CrpError('read-failed', `cannot read ${path}: ${describeError(err)}`, { cause: err });
    }
  },
  async list(dir) {
    try {
      return await readdir(dir);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw new CrpError('read-failed', `cannot list ${dir}: ${describeError(err)}`, { cause: err });
    }
  },
  async exists(path) {
    try {
      return (await stat(path)).isFile();
    } catch {
      return false;
    }
  },
};
