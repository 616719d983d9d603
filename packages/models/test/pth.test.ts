/**
 * The `.pth` reader against files written by torch 1.13 (fixtures-src/make-torch-pth.py): dtypes, strides and
 * offsets, shared storages, prefixes, a whole pickled module, zip variants, and every way a file can be refused.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { expectCrpError, expectCrpErrorAsync } from '@crp/testing';
import { describe, expect, it } from 'vitest';
import { PthFile, parseStateDict, SafetensorsFile } from '../src/index.js';
import { sniffFormat } from '../src/internal.js';
import { readStateDict } from '../src/node.js';
import { unpickle } from '../src/pickle.js';
import { crc32Portable, ZipArchive } from '../src/zip-archive.js';

const DIR = join(import.meta.dirname, 'fixtures', 'pth');
const bytes = (name: string) => readFileSync(join(DIR, name));
const open = (name: string) => PthFile.parse(bytes(name), name);

/** The tiny VGG's state dict keys (torchvision's names for cfg [8, M, 8, M, 8, M] + a 3-Linear classifier). */
const KEYS = [
  ...[0, 3, 6].flatMap((i) => [`features.${i}.weight`, `features.${i}.bias`]),
  ...[0, 3, 6].flatMap((i) => [`classifier.${i}.weight`, `classifier.${i}.bias`]),
];
const SHAPES: Record<string, number[]> = {
  'features.0.weight': [8, 3, 3, 3],
  'features.3.weight': [8, 8, 3, 3],
  'features.6.weight': [8, 8, 3, 3],
  'classifier.0.weight': [16, 392],
  'classifier.3.weight': [16, 16],
  'classifier.6.weight': [3, 16],
  'classifier.6.bias': [3],
};

const plain = open('tiny-vgg.pth');
const values = (file: PthFile, key: string) => Array.from(file.float32(key));

describe('PthFile', () => {
  it('reads a float32 state dict: names in order, shapes, contiguous strides', () => {
    expect(plain.content).toBe('state-dict');
    expect(plain.byteOrder).toBe('little');
    expect(plain.names).toEqual(KEYS);
    for (const [k, shape] of Object.entries(SHAPES)) expect(plain.entry(k).shape).toEqual(shape);
    expect(plain.entry('classifier.0.weight')).toMatchObject({
      dtype: 'float32',
      strides: [392, 1],
      storageOffset: 0,
    });
    const w = plain.float32('classifier.0.weight');
    expect(w.length).toBe(16 * 392);
    // He-normal weights of a 392-input layer: standard deviation sqrt(2/392) ~ 0.071
    const sd = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    expect(sd).toBeGreaterThan(0.06);
    expect(sd).toBeLessThan(0.085);
    // a copy by default, a view into the file on request
    w[0] = 12345;
    expect(plain.float32('classifier.0.weight')[0]).not.toBe(12345);
    const view = plain.float32('classifier.0.weight', { copy: false });
    expect(view[1]).toBe(w[1]);
  });

  it('applies strides and storage offsets (a transposed view, a slice of a larger tensor)', () => {
    const odd = open('tiny-vgg-noncontiguous.pth');
    expect(odd.entry('classifier.0.weight')).toMatchObject({ shape: [16, 392], strides: [1, 16] });
    expect(odd.entry('features.0.bias')).toMatchObject({ shape: [8], strides: [1], storageOffset: 5 });
    for (const k of KEYS) expect(values(odd, k), k).toEqual(values(plain, k));
  });

  it('reads tensors that share one storage, and keeps the key prefix', () => {
    const shared = open('tiny-vgg-shared.pth');
    expect(shared.names).toEqual(KEYS.map((k) => `module.${k}`));
    const biases = KEYS.filter((k) => k.endsWith('.bias')).map((k) => shared.entry(`module.${k}`));
    expect(new Set(biases.map((b) => b.storage)).size).toBe(1);
    expect(biases.map((b) => b.storageOffset)).toEqual([0, 8, 16, 24, 40, 56]);
    for (const k of KEYS) expect(values(shared, `module.${k}`), k).toEqual(values(plain, k));
    expect(open('tiny-vgg-prefixed.pth').names).toEqual(KEYS.map((k) => `model.${k}`));
  });

  it('rebuilds the state dict of a whole pickled nn.Module without running it', () => {
    const module = open('tiny-vgg-module.pth');
    expect(module.content).toBe('module');
    expect(module.names).toEqual(KEYS);
    for (const k of KEYS) expect(values(module, k), k).toEqual(values(plain, k));
  });

  it('reads tensors and parameters pickled as torch >= 2 does when they carry Python state', () => {
    const modern = open('torch2-style.pth');
    expect(modern.names).toEqual(['features.0.weight', 'features.0.bias']);
    for (const k of modern.names) expect(values(modern, k), k).toEqual(values(plain, k));
  });

  it('includes batch-norm buffers (int64 num_batches_tracked too) and names the dtype it cannot convert', () => {
    const bn = open('tiny-vgg-bn.pth');
    expect(bn.names).toContain('features.1.running_var');
    expect(bn.entry('features.1.num_batches_tracked')).toMatchObject({ dtype: 'int64', shape: [] });
    const running = bn.float32('features.1.running_var');
    expect(Math.min(...running)).toBeGreaterThanOrEqual(0.5);
    expect(Math.max(...running)).toBeLessThanOrEqual(2);
    expectCrpError(
      () => bn.float32('features.1.num_batches_tracked'),
      'unsupported-format',
      "tensor 'features.1.num_batches_tracked' of tiny-vgg-bn.pth is int64; float32, float16 and bfloat16 tensors are read",
    );
  });

  it('widens float16 and bfloat16 exactly (values are the float32 ones rounded)', () => {
    const bn = open('tiny-vgg-bn.pth');
    const f16 = open('tiny-vgg-bn-f16.pth');
    const bf16 = open('tiny-vgg-bf16.pth');
    expect(f16.entry('features.0.weight').dtype).toBe('float16');
    expect(bf16.entry('features.0.weight').dtype).toBe('bfloat16');
    for (const k of bn.names.filter((n) => bn.entry(n).dtype === 'float32')) {
      const a = bn.float32(k);
      const h = f16.float32(k);
      // float16 rounding: relative 2^-11 (normal numbers), absolute 2^-25 (subnormals)
      let over = 0;
      a.forEach((v, i) => {
        over = Math.max(over, Math.abs(v - h[i]!) - (Math.abs(v) * 2 ** -11 + 2 ** -25));
      });
      expect(over, k).toBeLessThanOrEqual(0);
    }
    for (const k of KEYS) {
      const p = plain.float32(k);
      const b = bf16.float32(k);
      const bits = new Uint32Array(b.buffer);
      p.forEach((v, i) => {
        expect(Math.abs(v - b[i]!)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -8);
        expect(bits[i]! & 0xffff).toBe(0); // a bfloat16 widened: the low 16 bits are zero
      });
    }
  });

  it('reads zips that other tools wrote (deflated entries, a big-endian byteorder) and unaligned bytes', () => {
    const deflated = open('tiny-vgg-deflated.pth');
    const big = open('tiny-vgg-big-endian.pth');
    expect(big.byteOrder).toBe('big');
    // every storage at an odd address: no typed-array view is possible, the reader must copy
    const raw = bytes('tiny-vgg-noncontiguous.pth');
    const shifted = new Uint8Array(raw.length + 1);
    shifted.set(raw, 1);
    const unaligned = PthFile.parse(shifted.subarray(1), 'unaligned');
    for (const k of KEYS) {
      expect(values(deflated, k), k).toEqual(values(plain, k));
      expect(values(big, k), k).toEqual(values(plain, k));
      expect(values(unaligned, k), k).toEqual(values(plain, k));
      expect(Array.from(unaligned.float32(k, { copy: false })), k).toEqual(values(plain, k));
    }
  });

  it('refuses the legacy format and says how to re-save', () => {
    expect(sniffFormat(bytes('tiny-vgg-legacy.pth'))).toBe('pth-legacy');
    const err = expectCrpError(
      () => open('tiny-vgg-legacy.pth'),
      'unsupported-format',
      "tiny-vgg-legacy.pth is in torch.save's legacy format",
      '_use_new_zipfile_serialization=False',
      "torch.save(sd, 'state_dict.pth')",
      'safetensors.torch.save_file',
    );
    expect(err.details.source).toBe('tiny-vgg-legacy.pth');
  });

  it('never runs a forbidden global: os.system and a class from __main__ are refused by name', () => {
    expectCrpError(
      () => open('unsafe-global.pth'),
      'unsafe-content',
      "refers to the Python global 'posix.system', which is outside the allowed set",
      'nothing in the file was executed',
      "torch.save(model.state_dict(), 'state_dict.pth')",
    );
    const err = expectCrpError(() => open('custom-class.pth'), 'unsafe-content', "'__main__.Wrapper'");
    expect(err.details.global).toBe('__main__.Wrapper');
  });

  it('names the file and the damage of truncated and corrupt copies', () => {
    expectCrpError(
      () => open('tiny-vgg-truncated.pth'),
      'corrupt-file',
      'tiny-vgg-truncated.pth is not a readable zip archive: no end-of-central-directory record',
      'truncated',
    );
    // the directory is intact, the damage is inside the data of features.6.weight (storage 4)
    const corrupt = open('tiny-vgg-corrupt.pth');
    expect(values(corrupt, 'features.0.weight')).toEqual(values(plain, 'features.0.weight'));
    expectCrpError(
      () => corrupt.float32('features.6.weight'),
      'corrupt-file',
      "tiny-vgg-corrupt.pth: entry 'tiny-vgg/data/4' fails its CRC-32 check",
    );
    // a file cut just before its end-of-directory record, and bytes that are no zip at all
    const whole = bytes('tiny-vgg.pth');
    expectCrpError(
      () => PthFile.parse(whole.subarray(0, whole.length - 30), 'cut.pth'),
      'corrupt-file',
      'cut.pth',
    );
    expectCrpError(
      () => PthFile.parse(new TextEncoder().encode('hello, world'), 'x.pth'),
      'unsupported-format',
      'x.pth is not a file written by torch.save',
    );
  });

  it('reads a state dict of another architecture (the importer, not the reader, refuses it)', () => {
    const resnet = open('resnet.pth');
    expect(resnet.names.slice(0, 3)).toEqual(['conv1.weight', 'bn1.weight', 'bn1.bias']);
    expect(resnet.names).toContain('layer4.1.conv2.weight');
  });

  it('tells formats apart by their bytes and reads files from disk', async () => {
    expect(sniffFormat(bytes('tiny-vgg.pth'))).toBe('pth');
    const st = readFileSync(join(import.meta.dirname, 'fixtures', 'vgg-small.safetensors'));
    expect(sniffFormat(st)).toBe('safetensors');
    expect(parseStateDict(st)).toBeInstanceOf(SafetensorsFile);
    expect(parseStateDict(bytes('tiny-vgg.pth'))).toBeInstanceOf(PthFile);
    const fromDisk = await readStateDict(join(DIR, 'tiny-vgg.pth'));
    expect(fromDisk.names).toEqual(KEYS);
    expect(Array.from(fromDisk.float32('classifier.6.bias'))).toEqual(values(plain, 'classifier.6.bias'));
    await expectCrpErrorAsync(() => readStateDict(join(DIR, 'missing.pth')), 'not-found', 'missing.pth');
    expectCrpError(
      () => parseStateDict(new Uint8Array(16), 'zeros.bin'),
      'unsupported-format',
      'zeros.bin is neither',
    );
    expectCrpError(
      () => plain.entry('features.1.weight'),
      'not-found',
      "no tensor 'features.1.weight'",
      'it has: features.0.weight',
    );
  });
});

/** Pickles assembled by hand, for opcodes and refusals that torch's files do not show. */
describe('unpickle', () => {
  const options = {
    source: 'test.pkl',
    functions: { 'collections.OrderedDict': () => 'an OrderedDict' },
    classModules: ['torch.nn.modules'],
    constants: {},
  };
  const enc = (s: string) => Array.from(new TextEncoder().encode(s));
  const pkl = (...parts: (number | number[] | string)[]) =>
    new Uint8Array(parts.flatMap((p) => (typeof p === 'string' ? enc(p) : typeof p === 'number' ? [p] : p)));

  it('builds data: ints of every width, floats, strings, lists, tuples, dicts, sets, memo', () => {
    // PROTO 4, MARK, BININT1 7, BININT2 300, BININT -5, LONG1 2^40, BINFLOAT 1.5, SHORT_BINUNICODE 'é', NONE,
    // NEWTRUE, EMPTY_SET + ADDITEMS, LIST, MEMOIZE, BINGET 0 (the same list again), TUPLE2, STOP
    // biome-ignore format: one opcode a line
    const bytes = pkl(
      0x80, 4,
      0x28,
      0x4b, 7,
      0x4d, [0x2c, 0x01],
      0x4a, [0xfb, 0xff, 0xff, 0xff],
      0x8a, 6, [0, 0, 0, 0, 0, 1],
      0x47, [0x3f, 0xf8, 0, 0, 0, 0, 0, 0],
      0x8c, 2, [0xc3, 0xa9],
      0x4e,
      0x88,
      0x8f, 0x28, 0x4b, 1, 0x4b, 2, 0x90,
      0x6c, 0x94, 0x68, 0, 0x86, 0x2e,
    );
    const out = unpickle(bytes, options) as { items: unknown[] };
    const [list, again] = out.items as [unknown[], unknown[]];
    expect(list).toBe(again);
    expect(list).toEqual([7, 300, -5, 2 ** 40, 1.5, 'é', null, true, new Set([1, 2])]);
  });

  it('refuses REDUCE on an allowed class (it would run its constructor) and unknown opcodes', () => {
    // GLOBAL torch.nn.modules.linear Linear, EMPTY_TUPLE, REDUCE
    const reduce = pkl(0x80, 2, 0x63, 'torch.nn.modules.linear\nLinear\n', 0x29, 0x52, 0x2e);
    expectCrpError(() => unpickle(reduce, options), 'unsafe-content', 'calls torch.nn.modules.linear.Linear');
    const newobj = pkl(0x80, 2, 0x63, 'torch.nn.modules.linear\nLinear\n', 0x29, 0x81, 0x2e);
    expect(unpickle(newobj, options)).toMatchObject({ className: 'torch.nn.modules.linear.Linear' });
    // a lowercase name in an allowed module is a function, not a class
    const fn = pkl(0x80, 2, 0x63, 'torch.nn.modules.module\nregister_module_forward_hook\n', 0x2e);
    expectCrpError(
      () => unpickle(fn, options),
      'unsafe-content',
      "'torch.nn.modules.module.register_module_forward_hook'",
    );
    const builtin = pkl(0x80, 2, 0x63, '__builtin__\neval\n', 0x2e);
    expectCrpError(() => unpickle(builtin, options), 'unsafe-content', "'builtins.eval'");
    expectCrpError(
      () => unpickle(pkl(0x80, 2, 0xff), options),
      'corrupt-file',
      'unknown opcode 0xff at byte 2',
    );
    expectCrpError(
      () => unpickle(pkl(0x80, 2, 0x58, [9, 0, 0, 0], 'ab'), options),
      'corrupt-file',
      'ends inside BINUNICODE',
    );
    expectCrpError(() => unpickle(pkl(0x80, 2, 0x4e), options), 'corrupt-file', 'before its STOP opcode');
  });
});

describe('ZipArchive', () => {
  it('lists torch.save entries (zip64 records) and refuses a damaged directory', () => {
    const whole = bytes('tiny-vgg.pth');
    const zip = ZipArchive.parse(whole, 'tiny-vgg.pth');
    expect(zip.names).toContain('tiny-vgg/data.pkl');
    expect(zip.names).toContain('tiny-vgg/version');
    expect(new TextDecoder().decode(zip.read('tiny-vgg/version')).trim()).toBe('3');
    expectCrpError(() => zip.read('nope'), 'not-found', "has no entry 'nope'");
    const damaged = new Uint8Array(whole);
    const view = new DataView(damaged.buffer);
    // the central directory starts at the offset that the zip64 end record gives; break its signature
    const at = damaged.length - 22 - 20 - 56;
    const cd = Number(view.getBigUint64(at + 48, true));
    damaged[cd] = 0;
    expectCrpError(
      () => ZipArchive.parse(damaged, 'damaged.pth'),
      'corrupt-file',
      'damaged.pth',
      'central directory entry 0 is damaged',
    );
  });

  it('computes the CRC-32 without node:zlib as zlib does (known values; every length 0..40; offsets)', () => {
    const text = (t: string) => new TextEncoder().encode(t);
    // the standard check value of CRC-32/ISO-HDLC, and the empty input
    expect(crc32Portable(text('123456789'))).toBe(0xcbf43926);
    expect(crc32Portable(new Uint8Array(0))).toBe(0);
    const data = new Uint8Array(4096);
    let x = 7;
    for (let i = 0; i < data.length; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      data[i] = x >>> 24;
    }
    // lengths around the 8-byte steps, from odd offsets (views not aligned to 4 or 8)
    for (let n = 0; n <= 40; n++) {
      for (const at of [0, 1, 3]) {
        const part = data.subarray(at, at + n);
        expect(crc32Portable(part), `length ${n} at ${at}`).toBe(zlib.crc32(part) >>> 0);
      }
    }
    expect(crc32Portable(data)).toBe(zlib.crc32(data) >>> 0);
  });
});
