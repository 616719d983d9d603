import { createHash } from 'node:crypto';
import type { ShardContext } from '@crp/attribution';

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

/** Identity of a data set by what the job sees of it: its size, labels and data-set indices (cheap, and the
 * same wherever it is loaded from); combine with file identities where the images themselves may differ. */
export function datasetIdentity(dataset: {
  size: number;
  labels: readonly number[];
  indices: readonly number[];
}): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(dataset.labels));
  hash.update(JSON.stringify(dataset.indices));
  return `${dataset.size} samples, labels+indices sha256:${hash.digest('hex')}`;
}
