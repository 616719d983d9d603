import type { KindRunner } from '../types.js';
import { crpRunner } from './crp.js';
import { lrpRunner } from './lrp.js';
import { regionRunner } from './region.js';
import { relmaxRunner } from './relmax.js';
import { visRunner } from './vis.js';

/** Every kind of golden case the toolkit knows. */
export const runners: KindRunner[] = [lrpRunner, crpRunner, relmaxRunner, regionRunner, visRunner];
