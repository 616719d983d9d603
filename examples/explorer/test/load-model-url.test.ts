/**
 * A TF.js layers model loaded from a URL, against a local server that counts what it is asked: each file is
 * fetched once, and every fetch (model.json and each weight file) is stopped by the load's time limit or by a
 * newer load's abort.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isCrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { GuardedLoad } from '../src/guarded-load.js';
import { loadModelFromUrl } from '../src/load-model.js';

/** model.json and weights.bin of a small dense model, as TF.js writes them. */
async function savedModel(model: tfl.LayersModel): Promise<{ json: string; weights: Buffer }> {
  let out: { json: string; weights: Buffer } | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      out = {
        json: JSON.stringify({
          format: 'layers-model',
          modelTopology: a.modelTopology,
          weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
        }),
        weights: Buffer.from(a.weightData as ArrayBuffer),
      };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return out!;
}

/** `METHOD /path` of every request the server got. */
const requests: string[] = [];
/** Responses never answered (under /hang/ the weight file): ended when the tests are done. */
const held = new Set<ServerResponse>();
let files: { json: string; weights: Buffer };
let original: tfl.LayersModel;

const server = createServer((req, res) => {
  requests.push(`${req.method} ${req.url}`);
  // the same model.json in every folder; each folder's weight file behaves as the folder's name says
  const [, folder, file] = (req.url ?? '').split('/');
  if (file === 'model.json') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(files.json);
  } else if (file === 'weights.bin' && folder === 'ok') {
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(files.weights);
  } else if (file === 'weights.bin' && folder === 'hang') {
    held.add(res);
    res.on('close', () => held.delete(res));
  } else res.writeHead(404).end();
});
let origin: string;

beforeAll(async () => {
  await tf.setBackend('cpu');
  original = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [3], units: 2, name: 'out', kernelInitializer: 'glorotUniform' }),
    ],
  });
  files = await savedModel(original);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // the page's address, which a model URL is relative to
  vi.stubGlobal('location', new URL(`${origin}/`));
});

afterAll(async () => {
  vi.unstubAllGlobals();
  original.dispose();
  for (const res of held) res.destroy();
  server.closeAllConnections();
  await new Promise<void>((ok) => server.close(() => ok()));
});

describe('loadModelFromUrl of a model.json', () => {
  it('fetches model.json and each weight file once, and builds the model they describe', async () => {
    requests.length = 0;
    const { model, name } = await loadModelFromUrl(
      `${origin}/ok/model.json`,
      new GuardedLoad('a model', 5000),
    );
    expect(requests).toEqual(['GET /ok/model.json', 'GET /ok/weights.bin']);
    expect(name).toBe('ok/model.json');
    const x = tf.tensor2d([[1, -2, 0.5]]);
    const [ours, theirs] = [model.predict(x) as tf.Tensor, original.predict(x) as tf.Tensor];
    expect(Array.from(ours.dataSync())).toEqual(Array.from(theirs.dataSync()));
    tf.dispose([x, ours, theirs]);
    model.dispose();
  });

  it('names a weight file the server does not have, with the URL it was fetched from', async () => {
    const err = await loadModelFromUrl(
      `${origin}/missing/model.json`,
      new GuardedLoad('a model', 5000),
    ).catch((e: unknown) => e);
    expect(isCrpError(err, 'not-found')).toBe(true);
    expect((err as Error).message).toBe(
      `the weight file weights.bin that ${origin}/missing/model.json lists could not be loaded from ${origin}/missing/weights.bin (HTTP 404): put the weight files beside model.json`,
    );
  });

  it('stops at the time limit while a weight file is not answered, naming that file', async () => {
    const tensors = tf.memory().numTensors;
    const err = await loadModelFromUrl(`${origin}/hang/model.json`, new GuardedLoad('a model', 300)).catch(
      (e: unknown) => e,
    );
    expect(isCrpError(err, 'unreachable')).toBe(true);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^${origin}/hang/weights\\.bin did not answer within 0\\.3 s \\(the time limit for a model\\)`,
      ),
    );
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('stops with the reason of its abort while a weight file is not answered', async () => {
    const newer = new AbortController();
    const reason = new Error('a newer model was asked for');
    const loading = loadModelFromUrl(
      `${origin}/hang/model.json`,
      new GuardedLoad('a model', 60_000, newer.signal),
    );
    await vi.waitFor(() => expect(requests.at(-1)).toBe('GET /hang/weights.bin'));
    newer.abort(reason);
    await expect(loading).rejects.toBe(reason);
  });
});
