/**
 * The whole concept study on a torchvision ResNet, timed (issue 21, deliverable 4): writes the state dict of a
 * seeded ResNet (the weight formula of @crp/testing/torch-weights, 2 classes) to a temporary `.pth` with the
 * repository's writer, and runs `crp study --model <it>` on the study's fixture patches (2 classes, the first 12 images of each by default)
 * as a user would: fine-tuning, evaluation, the three atlases, reference images and concept pruning. Prints the
 * wall time of each part (from the CLI's progress lines) and the total.
 *
 *   pnpm --filter @crp/bench resnet-study [--model resnet50|resnet18] [--size 64] [--samples 8]
 *     [--fine-tune 1] [--limit-per-class 12] [--keep]
 *
 * Needs `pnpm turbo run build --filter=@crp/cli...` first (it runs packages/cli/dist/bin.js).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { TorchResNetSpec } from '@crp/models';
import { BENCH_RESNETS, benchResNetStateDict, timeStudy, writePth } from './torch-fixtures.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');

// the bench ResNets with the fixture patches' 2 classes
const SPECS: Record<string, TorchResNetSpec> = {
  resnet18: { ...BENCH_RESNETS.resnet18, classes: 2 },
  resnet50: { ...BENCH_RESNETS.resnet50, classes: 2 },
};

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'resnet50' },
    size: { type: 'string', default: '64' },
    samples: { type: 'string', default: '8' },
    'fine-tune': { type: 'string', default: '1' },
    'limit-per-class': { type: 'string', default: '12' },
    keep: { type: 'boolean', default: false },
  },
});
const spec = SPECS[values.model];
if (spec === undefined) {
  console.error(`unknown --model '${values.model}'; valid: ${Object.keys(SPECS).join(', ')}`);
  process.exit(2);
}

const dir = await mkdtemp(join(tmpdir(), 'crp-resnet-study-'));
const pth = join(dir, `${values.model}.pth`);
await writePth(pth, benchResNetStateDict(spec));

const args = [
  join(repoRoot, 'packages', 'cli', 'dist', 'bin.js'),
  'study',
  '--model',
  pth,
  '--data',
  join(repoRoot, 'packages', 'study', 'test', 'fixtures', 'patches'),
  '--target',
  'mitosis',
  '--input-size',
  values.size,
  '--normalize',
  'imagenet',
  '--samples',
  values.samples,
  '--region',
  `center:${Math.round(Number(values.size) / 2)}`,
  '--fine-tune',
  values['fine-tune'],
  '--limit-per-class',
  values['limit-per-class'],
  '--out',
  join(dir, 'out'),
];
await timeStudy(`${values.model} ${values.size}px`, args, dir, values.keep);
