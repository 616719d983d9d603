import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { ShardContext } from '@crp/attribution';
import { fileError } from '@crp/common';

/**
 * How the coordinator and every worker get the model and the data set of a job from its spec (plain JSON, e.g.
 * `{ model: '/shared/model.json', data: 's3-mounted/patches' }`: paths or URLs that every machine can read).
 * The coordinator and the workers use the same loader, so they load the same way.
 */
export interface JobLoader<Spec = unknown> {
  /** Loads the model (as `crp`, and `model` for pruning criteria) and the random-access data set. */
  load(spec: Spec): Promise<ShardContext>;
  /**
   * What the spec names, as identity strings (e.g. size and SHA-256 of the model's files, the data set's listing
   * and labels). They enter the job's fingerprint; every worker checks what it loaded against them, so a worker
   * with another copy of the model at the same path fails the shard instead of mixing results.
   */
  identify(spec: Spec, ctx: ShardContext): Promise<{ model: string; data: string }>;
  /** Frees a loaded context (default: `ctx.crp.dispose()` and `ctx.model?.dispose()`). */
  dispose?(ctx: ShardContext): void;
}

export function disposeContext(loader: JobLoader<never>, ctx: ShardContext): void {
  if (loader.dispose !== undefined) loader.dispose(ctx);
  else {
    ctx.crp.dispose();
    ctx.model?.dispose();
  }
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

/**
 * Identity of a file, or of a folder's files (recursively, sorted by path): size and SHA-256 of the content.
 * Content, not modification times: copies of the same model on several machines have the same identity.
 */
export async function fileIdentity(path: string): Promise<string> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (err) {
    throw fileError('read', path, err);
  }
  if (!info.isDirectory()) return `${info.size} bytes sha256:${await sha256(path)}`;
  const files: string[] = [];
  const walk = async (dir: string) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) files.push(p);
    }
  };
  await walk(path);
  files.sort();
  const hash = createHash('sha256');
  let size = 0;
  for (const f of files) {
    const s = (await stat(f)).size;
    size += s;
    hash.update(`${relative(path, f)}\0${s}\0${await sha256(f)}\n`);
  }
  return `${files.length} files, ${size} bytes, sha256:${hash.digest('hex')}`;
}

/** Identity of a data set by what the job sees of it: its size, labels and data-set indices (cheap, and the
 * same wherever it is loaded from); combine with file identities where the images themselves may differ. */
export function datasetIdentity(dataset: { size: number; labels: readonly number[]; indices: readonly number[] }): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(dataset.labels));
  hash.update(JSON.stringify(dataset.indices));
  return `${dataset.size} samples, labels+indices sha256:${hash.digest('hex')}`;
}
