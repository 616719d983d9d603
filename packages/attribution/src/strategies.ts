import { CrpError } from '@crp/common';
import { atlasStrategy } from './atlas.js';
import { decompositionStrategy } from './decomposition-atlas.js';
import { maximizationStrategy } from './maximization.js';
import { regionAtlasStrategy } from './region.js';
import type { AnyShardedStrategy } from './sharding.js';

/** The sharded strategies of this package, by kind: what job files, worker threads and queue workers run
 * unless given more (e.g. `criterionStrategy` of `@crp/pruning`). */
export const SHARDED_STRATEGIES: readonly AnyShardedStrategy[] = [
  atlasStrategy,
  regionAtlasStrategy,
  maximizationStrategy,
  decompositionStrategy,
];

/** The strategy of a kind among `strategies` (default: this package's); an unknown kind fails naming the known
 * ones. */
export function strategyOf(
  kind: string,
  strategies: readonly AnyShardedStrategy[] = SHARDED_STRATEGIES,
): AnyShardedStrategy {
  const found = strategies.find((s) => s.kind === kind);
  if (found === undefined) {
    throw new CrpError(
      'invalid-argument',
      `unknown job kind '${kind}'; known: ${strategies.map((s) => s.kind).join(', ')}`,
    );
  }
  return found;
}
