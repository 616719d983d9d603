import type { KindRunner } from '../types.js';
import { crpRunner } from './crp.js';
import { evaluationRunner } from './evaluation.js';
import { lrpRunner } from './lrp.js';
import { onnxCrpRunner } from './onnx-crp.js';
import { onnxLrpRunner } from './onnx-lrp.js';
import { regionRunner } from './region.js';
import { relmaxRunner } from './relmax.js';
import { torchCrpRunner, torchLogitsRunner, torchLrpRunner } from './torch-resnet.js';
import { visRunner } from './vis.js';
import { vitRunner } from './vit.js';

/**
 * Every kind of golden case the toolkit knows, in the order they run. A new kind is one file in this folder
 * exporting a {@link KindRunner} (its `discover` usually `discoverCaseFiles` for cases listed in index.json, or
 * `discoverBundledCases` for one JSON file such as `region/region_golden.json`) plus one line here; the CLI's
 * `--kind`, its usage text and the checks for missing cases follow from this list.
 */
export const runners: KindRunner[] = [
  lrpRunner,
  crpRunner,
  relmaxRunner,
  regionRunner,
  visRunner,
  onnxLrpRunner,
  onnxCrpRunner,
  vitRunner,
  torchLogitsRunner,
  torchLrpRunner,
  torchCrpRunner,
  evaluationRunner,
];
