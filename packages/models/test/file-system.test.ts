import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import { fileSystem, registerFileSystemRouter } from '../src/node.js';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vggFromBlocks } from '../src/index.js';

let root: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'crp-models-fs-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function tinyModel(seed = 1): tfl.Sequential {
  return vggFromBlocks([[4], [6]], { inputShape: [8, 8, 3], classes: 3, hidden: [5], seed, batchNorm: true });
}

async function expectSamePredictions(a: tfl.LayersModel, b: tfl.LayersModel): Promise<void> {
  const x = tf.randomUniform([2, 8, 8, 3], 0, 1, 'float32', 7);
  const ya = a.predict(x) as tf.Tensor;
  const yb = b.predict(x) as tf.Tensor;
  expect(Array.from(await yb.data())).toEqual(Array.from(await ya.data()));
  tf.dispose([x, ya, yb]);
}

describe('fileSystem IOHandler', () => {
  it('round-trips a LayersModel through model.save and tfl.loadLayersModel', async () => {
    const model = tinyModel();
    const dir = join(root, 'round-trip');
    const result = await model.save(fileSystem(dir));
    expect(result.modelArtifactsInfo.weightDataBytes).toBe(model.countParams() * 4);
    expect((await readdir(dir)).sort()).toEqual(['model.json', 'weights.bin']);
    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    expect(json.format).toBe('layers-model');
    expect(json.weightsManifest[0].paths).toEqual(['./weights.bin']);

    const loaded = await tfl.loadLayersModel(fileSystem(dir));
    expect(loaded.layers.map((l) => l.name)).toEqual(model.layers.map((l) => l.name));
    await expectSamePredictions(model, loaded);
    // a path to the model.json file works as well as its directory
    const again = await tfl.loadLayersModel(fileSystem(join(dir, 'model.json')));
    await expectSamePredictions(model, again);
    for (const m of [model, loaded, again]) m.dispose();
  });

  it('writes and reads sharded weights', async () => {
    const model = tinyModel(2);
    const dir = join(root, 'sharded');
    await model.save(fileSystem(dir, { shardSizeBytes: 1024 }));
    const files = (await readdir(dir)).filter((f) => f.endsWith('.bin'));
    expect(files.length).toBeGreaterThan(2);
    expect(files).toContain(`group1-shard1of${files.length}.bin`);
    const loaded = await tfl.loadLayersModel(fileSystem(dir));
    await expectSamePredictions(model, loaded);
    model.dispose();
    loaded.dispose();
  });

  it('replaces an existing model directory atomically and leaves no temporary files', async () => {
    const dir = join(root, 'replace');
    const first = tinyModel(3);
    const second = tinyModel(4);
    await first.save(fileSystem(dir, { shardSizeBytes: 1024 }));
    await second.save(fileSystem(dir));
    expect((await readdir(dir)).sort()).toEqual(['model.json', 'weights.bin']);
    expect((await readdir(root)).filter((f) => f.startsWith('.'))).toEqual([]);
    const loaded = await tfl.loadLayersModel(fileSystem(dir));
    await expectSamePredictions(second, loaded);
    for (const m of [first, second, loaded]) m.dispose();
  });

  it('works through file:// URLs once the router is registered', async () => {
    registerFileSystemRouter();
    registerFileSystemRouter();
    const model = tinyModel(5);
    const dir = join(root, 'router');
    await model.save(`file://${dir}`);
    const loaded = await tfl.loadLayersModel(`file://${dir}/model.json`);
    await expectSamePredictions(model, loaded);
    model.dispose();
    loaded.dispose();
  });

  it('explains what is wrong with a bad path or bad files', async () => {
    await expect(tfl.loadLayersModel(fileSystem(join(root, 'nothing-here')))).rejects.toThrow(
      /no model at .*nothing-here.*model\.json/,
    );
    await expect(tfl.loadLayersModel(fileSystem(join(root, 'nothing-here')))).rejects.toMatchObject({
      code: 'not-found',
    });
    const model = tinyModel(6);
    const dir = join(root, 'broken');
    await model.save(fileSystem(dir));
    await writeFile(join(dir, 'weights.bin'), new Uint8Array(12));
    const err = await tfl.loadLayersModel(fileSystem(dir)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CrpError);
    expect((err as CrpError).message).toMatch(/hold 12 bytes but its weightsManifest describes \d+ bytes/);
    expect((err as CrpError).code).toBe('corrupt-file');
    await rm(join(dir, 'weights.bin'));
    await expect(tfl.loadLayersModel(fileSystem(dir))).rejects.toThrow(/weight file '.\/weights.bin'/);
    await expect(tfl.loadLayersModel(fileSystem(dir))).rejects.toMatchObject({ code: 'not-found' });
    await writeFile(join(dir, 'model.json'), '{"hello": 1}');
    await expect(tfl.loadLayersModel(fileSystem(dir))).rejects.toThrow(/no 'modelTopology'/);
    await expect(tfl.loadLayersModel(fileSystem(dir))).rejects.toMatchObject({ code: 'corrupt-file' });

    const foreign = join(root, 'foreign');
    await model.save(fileSystem(foreign));
    await writeFile(join(foreign, 'notes.txt'), 'mine');
    await expect(model.save(fileSystem(foreign))).rejects.toThrow(/notes\.txt.*new or empty directory/);
    await expect(model.save(fileSystem(join(root, 'x.json')))).rejects.toThrow(/needs a directory/);
    expect(() => fileSystem('')).toThrow(CrpError);
    expect(() => fileSystem(root, { shardSizeBytes: 0 })).toThrow(/shardSizeBytes must be an integer/);
    model.dispose();
  });
});
