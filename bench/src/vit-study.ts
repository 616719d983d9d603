/**
 * The whole concept study on torchvision's vit_b_16 (issue 22, deliverable 4), timed: writes the state dict of a
 * vit_b_16 whose tensors come from the seeded formula of @crp/testing/vit-formula (the golden cases' and the `vit`
 * bench's, with a 2-class head) to a temporary `.pth` with the repository's writer, and runs `crp study --model
 * <it>` on the study's fixture patches (2 classes) with the smallest settings: no fine-tuning, few samples. ViT
 * images are 224 px (the position embeddings fix the size), so the patches are resized. Prints the wall time.
 *
 *   pnpm --filter @crp/bench vit-study [--samples 2] [--limit-per-class 3] [--keep]
 *
 * Needs `pnpm turbo run build --filter=@crp/cli...` first (it runs packages/cli/dist/bin.js).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { vitFormulaStateDict } from '@crp/testing/vit-formula';
import { timeStudy, vitB16Config, writePth } from './torch-fixtures.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');

const { values } = parseArgs({
  options: {
    samples: { type: 'string', default: '2' },
    'limit-per-class': { type: 'string', default: '3' },
    'top-k': { type: 'string', default: '2' },
    keep: { type: 'boolean', default: false },
  },
});

const dir = await mkdtemp(join(tmpdir(), 'crp-vit-study-'));
const pth = join(dir, 'vit_b_16.pth');
await writePth(pth, vitFormulaStateDict(vitB16Config({ numClasses: 2 })));

const args = [
  join(repoRoot, 'packages', 'cli', 'dist', 'bin.js'),
  'study',
  '--model',
  pth,
  '--data',
  join(repoRoot, 'packages', 'study', 'test', 'fixtures', 'patches'),
  '--target',
  'mitosis',
  '--normalize',
  'imagenet',
  '--samples',
  values.samples,
  '--top-k',
  values['top-k'],
  '--fine-tune',
  '0',
  '--limit-per-class',
  values['limit-per-class'],
  '--out',
  join(dir, 'out'),
];
await timeStudy('vit_b_16 224px', args, dir, values.keep);
