import type { KindRunner } from '../types.js';
import { crpRunner } from './crp.js';
import { lrpRunner } from './lrp.js';
import { pendingKind } from './pending.js';
import { visRunner } from './vis.js';

/** Every kind of golden case the toolkit knows. */
export const runners: KindRunner[] = [
  lrpRunner,
  crpRunner,
  pendingKind('relmax', 'not implemented yet: the relmax runner arrives with @crp/attribution'),
  visRunner,
];
