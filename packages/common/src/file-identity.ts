import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileError } from './errors.js';

export interface FileIdentityOptions {
  /** hash the files' content (default true); false: only their relative paths and sizes (cheap for data sets
   * of millions of images) */
  content?: boolean;
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  } catch (err) {
    throw fileError('read', file, err);
  }
  return hash.digest('hex');
}

/** Every file under `dir`, recursively, sorted by path. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  await walk(dir);
  return out.sort();
}

/**
 * Identity of a file or of a folder's files (recursively): their count, total size and SHA-256 over each
 * file's relative path, size and content (or, with `content: false`, path and size only). Content, not
 * modification times: copies of a model on several machines have one identity, a model retrained at the same
 * path another. Distributed jobs compare these to refuse mixing results of different models or data.
 */
export async function fileIdentity(path: string, options: FileIdentityOptions = {}): Promise<string> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (err) {
    throw fileError('read', path, err);
  }
  const content = options.content ?? true;
  if (!info.isDirectory()) {
    return `1 file, ${info.size} bytes, ${content ? `sha256:${await sha256(path)}` : 'content not hashed'}`;
  }
  const hash = createHash('sha256');
  let bytes = 0;
  const files = await filesUnder(path);
  for (const f of files) {
    const size = (await stat(f)).size;
    bytes += size;
    hash.update(`${relative(path, f)}\0${size}\0${content ? await sha256(f) : ''}\n`);
  }
  return `${files.length} files, ${bytes} bytes, sha256${content ? '' : ' of paths and sizes'}:${hash.digest('hex')}`;
}
