/**
 * Hostile files: thousands of seeded mutations of real `.pth`, safetensors and model.json files (bit flips,
 * truncations, inserted and duplicated bytes, zip header fields, pickle opcodes and their arguments, JSON fields)
 * must each be read or refused with a CrpError; and hand-made files that claim more than they hold (a 100 GB
 * storage, a zip bomb, a view of 10^18 elements) are refused before anything that size is allocated.
 */
import { writeFileSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import type { CrpErrorCode } from '@crp/common';
import { expectCrpError, expectCrpErrorAsync, seedWeights } from '@crp/testing';
import {
  checkAllocation,
  describeFindings,
  fuzz,
  type Mutator,
  mutateJson,
  summarize,
} from '@crp/testing/fuzz';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PthFile, SafetensorsFile, vggFromBlocks } from '../src/index.js';
import { PTH_FLOAT_DTYPES } from '../src/internal.js';
import { loadModel } from '../src/node.js';
import { unpickle } from '../src/pickle.js';
import { useNativeZip, ZipArchive } from '../src/zip-archive.js';
import { PickleWriter, picklePth, pthMutators, tensorPth, writeZip } from './helpers/torch-zip.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const read = (path: string) => readFile(join(FIXTURES, path)).then((b) => new Uint8Array(b));

/**
 * Everything a reader of the file would do: parse, then convert every tensor it can. No tensor may be larger than
 * the file allows: a storage is at most what deflate can expand the file to (1032:1), and a view that repeats
 * storage elements at most the file's size.
 */
function readAllPth(bytes: Uint8Array): void {
  const file = PthFile.parse(bytes, 'fuzz.pth');
  for (const name of file.names) {
    if (!PTH_FLOAT_DTYPES.includes(file.entry(name).dtype)) continue;
    checkAllocation(`tensor '${name}'`, file.float32(name).byteLength, 1032 * bytes.length);
  }
}

/** Parse and convert every tensor; a float32 copy is at most four times the file (from 1-byte integers). */
function readAllSafetensors(bytes: Uint8Array): void {
  const file = SafetensorsFile.parse(bytes, 'fuzz.safetensors');
  // a valid result is what the types say: metadata is a map of strings
  const metadata: unknown = file.metadata;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new Error(`metadata is ${JSON.stringify(metadata)}, not a map of strings`);
  }
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new Error(`metadata '${k}' is ${JSON.stringify(v)}, not a string`);
  }
  for (const name of file.names)
    checkAllocation(`tensor '${name}'`, file.float32(name).byteLength, 4 * bytes.length);
}

const FILE_CODES: CrpErrorCode[] = ['corrupt-file', 'unsupported-format', 'unsafe-content'];

describe('fuzzing the .pth reader (zip + pickle)', () => {
  it('reads or refuses with a CrpError each of 2000 mutated files', async () => {
    const seeds: Record<string, Uint8Array> = {};
    for (const name of [
      'torch2-style',
      'tiny-vgg-module',
      'tiny-vgg-shared',
      'tiny-vgg-deflated',
      'tiny-vgg-big-endian',
      'tiny-vgg-bf16',
    ]) {
      seeds[name] = await read(`pth/${name}.pth`);
    }
    seeds.tensor = tensorPth({ numel: 6, shape: [2, 3], strides: [1, 2] });
    const report = await fuzz({
      seeds,
      target: readAllPth,
      runs: 2000,
      seed: 20,
      codes: FILE_CODES,
      grammar: pthMutators,
      ...(process.env.FUZZ_TRACE
        ? {
            trace: (run, recipe, b) =>
              writeFileSync(
                process.env.FUZZ_TRACE!,
                `${run} ${recipe}\n${Buffer.from(b).toString('base64')}\n`,
              ),
          }
        : {}),
    });
    expect(describeFindings(report)).toBe('');
    console.log(summarize('pth', report));
    // the campaign reached the pickle, not only the zip: some files were read, some refused as unsafe
    expect(report.accepted).toBeGreaterThan(100);
    expect(report.refused['corrupt-file']).toBeGreaterThan(500);
  });
});

/** Mutates the JSON header of a safetensors file and writes the header length again. */
const safetensorsHeader: Mutator = (bytes, rng) => {
  if (bytes.length < 8) return bytes;
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  let header: Parameters<typeof mutateJson>[0];
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  } catch {
    return bytes;
  }
  mutateJson(header, rng);
  const text = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + text.length + bytes.length - 8 - length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(bytes.subarray(8 + length), 8 + text.length);
  return out;
};

describe('fuzzing the safetensors reader', () => {
  it('reads or refuses with a CrpError each of 3000 mutated files', async () => {
    const seeds = {
      f32: await read('vgg-small.safetensors'),
      bf16: await read('vgg-small-bf16.safetensors'),
      f16: await read('vgg-small-bn-f16.safetensors'),
    };
    const report = await fuzz({
      seeds,
      target: readAllSafetensors,
      runs: 3000,
      seed: 21,
      codes: ['corrupt-file'],
      grammar: { header: safetensorsHeader },
    });
    expect(describeFindings(report)).toBe('');
    console.log(summarize('safetensors', report));
    expect(report.accepted).toBeGreaterThan(100);
  });
});

describe('fuzzing model.json loading', () => {
  let dir: string;
  let json: Uint8Array;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    dir = await mkdtemp(join(tmpdir(), 'crp-fuzz-model-'));
    const model = vggFromBlocks([[2], [3]], {
      inputShape: [6, 6, 3],
      classes: 2,
      hidden: [4],
      batchNorm: true,
    });
    seedWeights(model, 20);
    const { fileSystem } = await import('../src/node.js');
    await model.save(fileSystem(join(dir, 'seed')));
    json = new Uint8Array(await readFile(join(dir, 'seed', 'model.json')));
    model.dispose();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads or refuses with a CrpError each of 400 mutated model.json files', async () => {
    const path = join(dir, 'model.json');
    await copyFile(join(dir, 'seed', 'weights.bin'), join(dir, 'weights.bin'));
    const modelJson: Mutator = (bytes, rng) => {
      let value: Parameters<typeof mutateJson>[0];
      try {
        value = JSON.parse(new TextDecoder().decode(bytes));
      } catch {
        return bytes; // an earlier byte mutation broke the JSON
      }
      mutateJson(value, rng);
      return new TextEncoder().encode(JSON.stringify(value));
    };
    const before = tf.memory().numTensors;
    const report = await fuzz({
      seeds: { json },
      target: async (bytes) => {
        await writeFile(path, bytes);
        const model = await loadModel(path);
        model.dispose();
      },
      runs: 400,
      seed: 22,
      codes: ['corrupt-file', 'unsupported-format', 'not-found', 'read-failed'],
      grammar: { json: modelJson, 'json twice': (b, rng) => modelJson(modelJson(b, rng), rng) },
    });
    expect(describeFindings(report)).toBe('');
    console.log(summarize('model.json', report));
    expect(report.accepted).toBeGreaterThan(10);
    // a refused model leaves no weights behind
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('files that claim more than they hold', () => {
  it('refuses a pickle that claims a 100 GB storage, before allocating', () => {
    const numel = 25e9; // 100 GB of float32
    expectCrpError(
      () =>
        PthFile.parse(
          tensorPth({ numel, shape: [numel], strides: [1], data: new Uint8Array(16) }),
          'huge.pth',
        ),
      'corrupt-file',
      "storage '0' (25000000000 float32 elements) needs 100000000000 bytes but archive/data/0 has 16",
    );
    // the same claim with a zip64 directory that backs it up: the declared size is beyond the file
    expectCrpError(
      () =>
        PthFile.parse(
          tensorPth({
            numel,
            shape: [numel],
            strides: [1],
            data: new Uint8Array(16),
            entry: { declaredSize: numel * 4 },
          }),
          'huge64.pth',
        ),
      'corrupt-file',
      "'archive/data/0'",
    );
  });

  it('refuses a view whose copy would be larger than the file (a broadcast of 10^18 elements)', () => {
    const file = tensorPth({ numel: 1, shape: [1e9, 1e9], strides: [0, 0] });
    expectCrpError(
      () => PthFile.parse(file, 'broadcast.pth'),
      'corrupt-file',
      'broadcast.pth',
      '1000000000000000000 elements',
    );
    // a small broadcast (torch's expand) is still read
    const expanded = PthFile.parse(
      tensorPth({
        numel: 1,
        shape: [3, 4],
        strides: [0, 0],
        data: new Uint8Array(new Float32Array([2.5]).buffer),
      }),
    );
    expect(Array.from(expanded.float32('w'))).toEqual(new Array(12).fill(2.5));
  });

  it('refuses zip bombs: an entry that inflates beyond its declared size, a declared size no deflate reaches', () => {
    const zeros = new Uint8Array(8 << 20);
    // declared 64 bytes, inflates to 8 MB: the inflater stops at the declared size
    const calls: { maxOutputLength: number }[] = [];
    useNativeZip({
      inflateRawSync: (b: Uint8Array, options: { maxOutputLength: number }) => {
        calls.push({ ...options });
        return zlib.inflateRawSync(b, options);
      },
    });
    try {
      const bomb = writeZip([{ name: 'archive/data/0', data: zeros, method: 8, declaredSize: 64 }]);
      expectCrpError(
        () => ZipArchive.parse(bomb, 'bomb.zip').read('archive/data/0'),
        'corrupt-file',
        "bomb.zip: entry 'archive/data/0'",
        'more than the 64 bytes',
      );
      expect(calls).toEqual([{ maxOutputLength: 64 }]);
    } finally {
      useNativeZip(zlib);
    }
    // 8 kB of deflate data cannot hold 4 GB (deflate expands at most 1032:1): refused when the directory is read
    const liar = writeZip([
      { name: 'archive/data/0', data: new Uint8Array(8192), method: 8, declaredSize: 2 ** 32 - 2 },
    ]);
    expectCrpError(() => ZipArchive.parse(liar, 'liar.zip'), 'corrupt-file', 'liar.zip', 'deflate');
  });

  it('regression: a zip64 extra field that ends early is a corrupt file, not a RangeError', () => {
    const good = writeZip([{ name: 'a', data: new Uint8Array(4), declaredSize: 2 ** 33 }]);
    // cut the central directory's zip64 extra field short: 4 of its 8 bytes remain before the end record
    const end = good.length - 22;
    const cut = new Uint8Array([...good.subarray(0, end - 4), ...good.subarray(end)]);
    const view = new DataView(cut.buffer);
    view.setUint32(cut.length - 22 + 12, view.getUint32(cut.length - 22 + 12, true) - 4, true);
    expectCrpError(() => ZipArchive.parse(cut, 'cut.zip'), 'corrupt-file', 'cut.zip');
  });

  it('regression: a negative BINSTRING length is refused, not a loop that re-reads the same bytes', () => {
    const w = new PickleWriter().op(0x54, 0xfb, 0xff, 0xff, 0xff); // BINSTRING of length -5
    expectCrpError(
      () => unpickle(w.bytes(), { source: 'loop.pkl', functions: {}, classModules: [], constants: {} }),
      'corrupt-file',
      'loop.pkl: the pickle has a negative BINSTRING length',
    );
  });

  it('regression: a safetensors __metadata__ that is not a map of strings is refused, not returned as one', () => {
    const file = (metadata: unknown) => {
      const header = new TextEncoder().encode(
        JSON.stringify({ __metadata__: metadata, w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }),
      );
      const out = new Uint8Array(8 + header.length + 4);
      new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
      out.set(header, 8);
      return out;
    };
    expectCrpError(
      () => SafetensorsFile.parse(file({ cfg: [1, 2] }), 'meta.safetensors'),
      'corrupt-file',
      'meta.safetensors',
      '__metadata__ is {"cfg":[1,2]}',
    );
    expectCrpError(
      () => SafetensorsFile.parse(file(7), 'meta.safetensors'),
      'corrupt-file',
      '__metadata__ is 7',
    );
    expect(SafetensorsFile.parse(file({ format: 'pt' })).metadata).toEqual({ format: 'pt' });
    expect(SafetensorsFile.parse(file(null)).metadata).toEqual({});
  });

  it('regression: a negative storage offset is refused (it read from the end of the storage)', () => {
    const negative = tensorPth({ numel: 4, shape: [2], strides: [1] });
    // the offset is the BININT after BINPERSID (0x51): set it to -1
    const pkl = ZipArchive.parse(negative).read('archive/data.pkl').slice();
    const at = pkl.indexOf(0x51) + 1;
    expect(pkl[at]).toBe(0x4a);
    pkl.set([0xff, 0xff, 0xff, 0xff], at + 1);
    const file = writeZip([
      { name: 'archive/data.pkl', data: pkl },
      { name: 'archive/data/0', data: new Uint8Array(16) },
    ]);
    expectCrpError(
      () => PthFile.parse(file, 'offset.pth'),
      'corrupt-file',
      'offset.pth',
      'without a storage and an offset',
    );
  });

  it('regression: sub-modules shared in a chain (2^40 names) are refused, not walked for ever', () => {
    // m0 = Module(); m_{i+1} = Module() with _modules {'a': m_i, 'b': m_i}: 40 levels, 2^40 paths to m0
    const w = new PickleWriter();
    const module = (memo: number, children: number | undefined) => {
      w.global('torch.nn.modules.container', 'Sequential').op(0x29, 0x81); // NEWOBJ
      w.op(0x7d).str('_parameters').op(0x7d, 0x73).str('_modules').op(0x7d);
      if (children !== undefined) w.str('a').op(0x68, children, 0x73).str('b').op(0x68, children, 0x73);
      w.op(0x73, 0x62, 0x71, memo); // SETITEM (_modules), BUILD, BINPUT memo
    };
    for (let i = 0; i < 40; i++) {
      module(i, i === 0 ? undefined : i - 1);
      if (i < 39) w.op(0x30); // POP: the module stays in the memo only
    }
    expectCrpError(
      () => PthFile.parse(picklePth(w.bytes()), 'diamonds.pth'),
      'corrupt-file',
      'diamonds.pth',
      'shares sub-modules',
    );
  });

  it('regression: a module that contains itself is refused, not a stack overflow', () => {
    // m = Module(); m.__dict__ = {'_parameters': {}, '_modules': {'self': m}}
    const w = new PickleWriter()
      .global('torch.nn.modules.linear', 'Linear')
      .op(0x29, 0x81, 0x71, 0) // EMPTY_TUPLE, NEWOBJ, BINPUT 0
      .op(0x7d) // the state dict
      .str('_parameters')
      .op(0x7d, 0x73) // {}
      .str('_modules')
      .op(0x7d)
      .str('self')
      .op(0x68, 0, 0x73, 0x73, 0x62); // BINGET 0 (the module itself), SETITEM, SETITEM, BUILD
    expectCrpError(
      () => PthFile.parse(picklePth(w.bytes()), 'cycle.pth'),
      'corrupt-file',
      'cycle.pth',
      "'self'",
      'contains itself',
    );
  });
});

describe('model.json files that TF.js cannot build', () => {
  let dir: string;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    dir = await mkdtemp(join(tmpdir(), 'crp-fuzz-json-'));
    const model = vggFromBlocks([[2]], { inputShape: [4, 4, 3], classes: 2, hidden: [] });
    const { fileSystem } = await import('../src/node.js');
    await model.save(fileSystem(join(dir, 'm')));
    model.dispose();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  /** The saved model.json as TF.js's type, changed by `change` and written beside it. */
  const rewrite = async (change: (json: { weightsManifest: { weights?: { name: string }[] }[] }) => void) => {
    const path = join(dir, 'm', 'model.json');
    const json = JSON.parse(await readFile(path, 'utf8'));
    change(json);
    await writeFile(join(dir, 'm', 'changed.json'), JSON.stringify(json));
    return join(dir, 'm', 'changed.json');
  };

  it('regression: a weightsManifest group without weights is a corrupt file, not a TypeError', async () => {
    const path = await rewrite((j) => {
      delete j.weightsManifest[0]!.weights;
    });
    await expectCrpErrorAsync(
      () => loadModel(path),
      'corrupt-file',
      'weightsManifest',
      'group 0 without a list of weights',
    );
  });

  it('regression: weights that do not fit the topology are a corrupt file, and leave no tensor behind', async () => {
    const before = tf.memory().numTensors;
    const path = await rewrite((j) => {
      j.weightsManifest[0]!.weights![0]!.name = 'no_such_layer/kernel';
    });
    await expectCrpErrorAsync(
      () => loadModel(path),
      'corrupt-file',
      'does not describe a model TF.js can build',
      'no_such_layer/kernel',
    );
    expect(tf.memory().numTensors).toBe(before);
    // the unchanged file still loads
    const model = await loadModel(join(dir, 'm'));
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
