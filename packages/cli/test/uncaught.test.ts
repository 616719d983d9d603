import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { fileSystem } from '@crp/models/node';
import { createRaster } from '@crp/vis';
import { writePng } from '@crp/vis/node';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// bin.ts's last line of defence: an exception that escapes every handler (thrown by user code in a callback) is
// one line and exit 1, not Node's dump of the throwing line of emscripten's minified source (kilobytes).
const run = promisify(execFile);
const bin = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
const userCode = fileURLToPath(new URL('./fixtures/throw-after-backend.mjs', import.meta.url));

let dir: string;
let modelDir: string;
let image: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crp-uncaught-'));
  await tf.setBackend('cpu'); // only to build the fixture; the spawned CLI picks its own backend
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: 2, kernelSize: 3, padding: 'same', name: 'conv1' }),
      tfl.layers.flatten({ name: 'flatten' }),
      tfl.layers.dense({ units: 3, name: 'logits' }),
    ],
  });
  modelDir = join(dir, 'model');
  await model.save(fileSystem(modelDir));
  model.dispose();
  const img = createRaster(8, 8, 1);
  for (let i = 0; i < img.data.length; i++) img.data[i] = (i * 29) % 256;
  image = join(dir, 'in.png');
  await writePng(image, img);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `crp explain` with the throwing user code loaded; resolves with the exit code and output. */
async function explainWithUserError(env: NodeJS.ProcessEnv) {
  const args = ['--import', 'tsx', '--import', userCode, bin, 'explain', '--model', modelDir, image];
  try {
    await run(process.execPath, [...args, '--out', join(dir, 'heat.png'), '--threads', '1'], { env });
    return { code: 0, stderr: '' };
  } catch (err) {
    const failed = err as { code: number; stderr: string };
    return { code: failed.code, stderr: failed.stderr };
  }
}

describe('an exception in user code', () => {
  it('is one line and exit 1, ahead of emscripten handler (no minified source, no stack)', async () => {
    const { CRP_DEBUG: _, ...env } = process.env;
    const { code, stderr } = await explainWithUserError(env);
    expect(code).toBe(1);
    const lines = stderr.trim().split('\n');
    expect(lines[0]).toMatch(/^TF\.js backend: /);
    const handlers = Number(/crp: boom in user code \((\d+) handlers\)$/.exec(lines[1] ?? '')?.[1]);
    // wasm (this machine's backend) registers emscripten's handler beside ours
    if (lines[0]!.startsWith('TF.js backend: wasm')) expect(handlers).toBeGreaterThanOrEqual(2);
    expect(lines).toHaveLength(2);
    expect(stderr.length).toBeLessThan(300);
  }, 60_000);

  it('prints its stack with CRP_DEBUG=1', async () => {
    const { code, stderr } = await explainWithUserError({ ...process.env, CRP_DEBUG: '1' });
    expect(code).toBe(1);
    expect(stderr).toMatch(/crp: boom in user code/);
    expect(stderr).toMatch(/\n\s+at .*throw-after-backend\.mjs:\d+:\d+/);
  }, 60_000);
});
