import type { BenchResult, SuiteContext } from '../measure.js';
import { attributionSuite } from './attribution.js';
import { browserSuite } from './browser.js';
import { crpSuite } from './crp.js';
import { distributedSuite } from './distributed.js';
import { evaluationSuite } from './evaluation.js';
import { groupedConvSuite } from './grouped-conv.js';
import { lrpSuite } from './lrp.js';
import { regionSuite } from './region.js';
import { resnetSuite } from './resnet.js';
import { vitSuite } from './vit.js';

/** Every benchmark suite, by name; each runs in a process of its own (suite-process.ts). */
export const suites: Record<string, (context: SuiteContext) => Promise<BenchResult[]>> = {
  lrp: lrpSuite,
  crp: crpSuite,
  attribution: attributionSuite,
  region: regionSuite,
  distributed: distributedSuite,
  evaluation: evaluationSuite,
  browser: browserSuite,
  resnet: resnetSuite,
  vit: vitSuite,
  'grouped-conv': groupedConvSuite,
};
