#!/usr/bin/env node
// Packaging test: packs every public package with pnpm (workspace: ranges become versions), installs the
// tarballs into a fresh temporary project with plain npm, type-checks a script that imports every package,
// and runs it. Proves that the packages work for someone who installs them from npm.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'crp-pack-'));
const tarballs = join(work, 'tarballs');
const project = join(work, 'project');
mkdirSync(tarballs);
mkdirSync(project);
const run = (cmd, args, cwd) =>
  execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });

const packages = readdirSync(join(root, 'packages'))
  .map((name) => ({
    dir: join(root, 'packages', name),
    manifest: JSON.parse(readFileSync(join(root, 'packages', name, 'package.json'), 'utf8')),
  }))
  .filter((p) => !p.manifest.private);
console.log(`packing ${packages.map((p) => p.manifest.name).join(', ')}`);
for (const p of packages) run('pnpm', ['pack', '--pack-destination', tarballs], p.dir);
const files = readdirSync(tarballs).map((f) => join(tarballs, f));

writeFileSync(
  join(project, 'package.json'),
  JSON.stringify({ name: 'crp-pack-check', private: true, type: 'module' }, null, 2),
);
writeFileSync(join(project, '.npmrc'), 'onnxruntime-node-install=skip\n');
console.log('installing the tarballs with npm...');
run(
  'npm',
  [
    'install',
    '--no-audit',
    '--no-fund',
    '--loglevel=error',
    ...files,
    '@tensorflow/tfjs-core@4.22.0',
    '@tensorflow/tfjs-layers@4.22.0',
    '@tensorflow/tfjs-backend-wasm@4.22.0',
    '@tensorflow/tfjs-backend-cpu@4.22.0',
    'typescript@5.9',
    '@types/node@20',
  ],
  project,
);

writeFileSync(
  join(project, 'check.ts'),
  `
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { selectBackend } from '@crp/backend';
import { attribute, compositeByName } from '@crp/lrp';
import { CondAttribution, ChannelConcept } from '@crp/core';
import { maximization } from '@crp/attribution';
import { smallVgg } from '@crp/models';
import { imgify, encodePng } from '@crp/vis';
import * as rag from '@crp/rag';
import { CrpError } from '@crp/common';
import { writeFileAtomic } from '@crp/common/node';
import { readImage } from '@crp/vis/node';
import { fileSystem } from '@crp/models/node';
import { runAtlasJob } from '@crp/attribution/node';
import { writeCurves } from '@crp/pruning/node';
import { parseRedisUrl, QUEUE_STRATEGIES } from '@crp/queue';

const choice = await selectBackend({ threads: 1 });
const model: tfl.LayersModel = smallVgg({ inputShape: [16, 16, 3], classes: 3, seed: 1 });
const x = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 1);
const { relevance } = attribute(model, x, { composite: compositeByName('epsilon_plus_flat'), target: [0, 1] });
const crp = new CondAttribution(model);
const r = crp.run(x, [{ y: [0], block3_conv1: [1] }], { recordLayers: ['block3_conv1'] });
const scores = new ChannelConcept().attribute(r.relevances.block3_conv1!);
const maxi = await maximization(crp, { images: x, labels: [0, 1] }, { layers: ['block3_conv1'], topK: 1 });
const png = encodePng(imgify(tf.sum(relevance, -1), { cmap: 'bwr', symmetric: true, grid: true }));
console.log(JSON.stringify({ backend: choice.backend, relevance: relevance.shape, heatmap: r.heatmap!.shape, scores: scores.shape,
  top: maxi.relevance.block3_conv1!.top.length, png: png.length > 100, rag: Object.keys(rag).length > 5,
  node: [writeFileAtomic, readImage, fileSystem, runAtlasJob, writeCurves].every((f) => typeof f === 'function'),
  error: new CrpError('invalid-argument', 'x').code,
  queue: parseRedisUrl('rediss://u:pw@h:1/2', {}).display === 'rediss://u:***@h:1/2' && QUEUE_STRATEGIES.length === 5 }));
`,
);
writeFileSync(
  join(project, 'tsconfig.json'),
  JSON.stringify(
    {
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        skipLibCheck: true,
        noUncheckedIndexedAccess: true,
        outDir: 'out',
        types: ['node'],
        lib: ['ES2023', 'DOM'],
      },
      files: ['check.ts'],
    },
    null,
    2,
  ),
);
console.log('type-checking and compiling a script that imports every package...');
run('npx', ['tsc', '-p', '.'], project);
const out = run('node', ['out/check.js'], project).trim().split('\n').pop();
console.log(out);
const result = JSON.parse(out);
const ok =
  result.backend === 'wasm' &&
  result.relevance.join() === '2,16,16,3' &&
  result.heatmap.join() === '2,16,16' &&
  result.png &&
  result.rag &&
  result.node &&
  result.error === 'invalid-argument' &&
  result.queue;
rmSync(work, { recursive: true, force: true });
console.log(ok ? `packaging check passed (${packages.length} packages)` : 'packaging check FAILED');
process.exit(ok ? 0 : 1);
