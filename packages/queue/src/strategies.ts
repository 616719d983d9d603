import type { AnyShardedStrategy } from '@crp/attribution';
import { SHARDED_STRATEGIES } from '@crp/attribution/internal';
import { criterionStrategy } from '@crp/pruning';

/** Every kind a queue worker runs by default: the strategies of @crp/attribution (atlas, region atlas,
 * maximisation, decomposition atlas) and the pruning criteria of @crp/pruning. */
export const QUEUE_STRATEGIES: readonly AnyShardedStrategy[] = [...SHARDED_STRATEGIES, criterionStrategy];
