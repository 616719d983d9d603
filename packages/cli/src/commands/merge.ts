import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { type AnyShardedStrategy, mergeShardFiles, type ShardFile } from '@crp/attribution';
import { decodeShardJson, SHARDED_STRATEGIES, strategyOf } from '@crp/attribution/internal';
import { CrpError, fileError } from '@crp/common';
import { writeJsonAtomic } from '@crp/common/node';
import { criterionStrategy } from '@crp/pruning';
import { required } from '../args.js';
import { UsageError } from '../usage-error.js';

export const mergeUsage = `crp merge FILES... --out FILE

Combines the partial files that crp atlas|refs|prune --shard i/n wrote (one per part, e.g. per task of a
Kubernetes Indexed Job or a Slurm array) into the result: the atlas, maximisation or criterion scores as JSON,
identical to one run in one process. Every shard must be covered; a file given twice counts once; partials of
another job (model, data set, options, toolkit or shard size) are refused with the difference.

  --out FILE          the merged result (JSON)`;

export interface MergeOutput {
  kind: string;
  out: string;
  files: number;
  shards: number;
}

const STRATEGIES: readonly AnyShardedStrategy[] = [...SHARDED_STRATEGIES, criterionStrategy];

export async function merge(argv: string[], json: boolean): Promise<MergeOutput> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { out: { type: 'string' } },
    allowPositionals: true,
  });
  const out = required('out', values.out);
  if (positionals.length === 0) throw new UsageError('give the partial files to merge');
  const files: ShardFile[] = [];
  for (const path of positionals) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw fileError('read', path, err, 'partial file');
    }
    try {
      files.push(decodeShardJson<ShardFile>(text));
    } catch (err) {
      throw new CrpError('corrupt-file', `${path} is not JSON (a partial file written by --shard i/n?)`, {
        cause: err,
      });
    }
  }
  const kind = files[0]!.job?.kind;
  if (typeof kind !== 'string') {
    throw new CrpError('unsupported-format', `${positionals[0]} is not a partial file of crp --shard i/n`);
  }
  const result = mergeShardFiles(strategyOf(kind, STRATEGIES), files, positionals);
  await writeJsonAtomic(out, result);
  if (!json)
    console.log(`merged ${files.length} partials (${files[0]!.shards} shards) of the ${kind} job -> ${out}`);
  return { kind, out, files: files.length, shards: files[0]!.shards };
}
