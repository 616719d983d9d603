import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrpError } from '@crp/common';
import { writeFileAtomic } from '@crp/common/node';
import { encode as fastPngEncode } from 'fast-png';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticScene } from '../scripts/fixtures.js';
import {
  decodeImage,
  decodeJpeg,
  decodePng,
  encodePng,
  pngDataUri,
  type RasterImage,
  rasterToNdarray,
  sniffImageFormat,
  toRasterImage,
  toRgb,
  toRgba,
} from '../src/index.js';
import { readImage, readPng, writeImage, writePng } from '../src/node.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crp-vis-io-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    if (err instanceof CrpError) return err.code;
    throw err;
  }
  throw new Error('expected a CrpError');
}

const image = (channels: 1 | 3 | 4, width = 5, height = 3): RasterImage => ({
  width,
  height,
  channels,
  data: Uint8Array.from({ length: width * height * channels }, (_, i) => (i * 37 + 11) % 256),
});

describe('PNG', () => {
  it.each([1, 3, 4] as const)('round-trips %i channel(s) exactly', (channels) => {
    const original = image(channels);
    const bytes = encodePng(original);
    expect(sniffImageFormat(bytes)).toBe('png');
    expect(decodePng(bytes)).toEqual(original);
  });

  it('decodes what another decoder reads: grey, grey+alpha, RGB, RGBA in 8 and 16 bit (pngjs)', () => {
    const w = 4;
    const h = 3;
    const rgba = Uint8Array.from(
      { length: w * h * 4 },
      (_, i) => (i % 4 === 3 ? 40 + 17 * i : 9 + 23 * i) % 256,
    );
    for (const bitDepth of [8, 16] as const) {
      for (const [colorType, channels] of [
        [0, 1],
        [4, 4],
        [2, 3],
        [6, 4],
      ] as const) {
        const png = new PNG({ width: w, height: h });
        png.data = Buffer.from(rgba);
        const bytes = PNG.sync.write(png, { colorType, bitDepth, inputColorType: 6, inputHasAlpha: true });
        // pngjs reads every PNG as 8-bit RGBA: the reference, in our channel layout
        const ref = PNG.sync.read(bytes).data;
        const expected = Array.from({ length: w * h }, (_, p) =>
          Array.from(ref.subarray(p * 4, p * 4 + 4)).slice(0, channels === 1 ? 1 : channels),
        ).flat();
        const decoded = decodePng(new Uint8Array(bytes));
        expect([decoded.width, decoded.height, decoded.channels]).toEqual([w, h, channels]);
        expect(Array.from(decoded.data), `colour type ${colorType}, ${bitDepth} bit`).toEqual(expected);
      }
    }
  });

  it('decodes palettes (with transparency), 1/2/4-bit grey and interlaced images', () => {
    const w = 5;
    const h = 3;
    const index = Uint8Array.from({ length: w * h }, (_, i) => i % 3);
    const palette = [
      [255, 0, 0],
      [0, 128, 255],
      [7, 7, 7],
    ];
    const indexed = decodePng(
      fastPngEncode({ width: w, height: h, data: index, depth: 8, channels: 1, palette }),
    );
    expect(indexed.channels).toBe(3);
    expect(Array.from(indexed.data)).toEqual(Array.from(index, (k) => palette[k]!).flat());
    // the first entry transparent (fast-png's encoder writes tRNS entries in palette order only up to there)
    const withAlpha = palette.map((c, k) => [...c, k === 0 ? 0 : 255]);
    const transparent = decodePng(
      fastPngEncode({ width: w, height: h, data: index, depth: 8, channels: 1, palette: withAlpha }),
    );
    expect(transparent.channels).toBe(4);
    expect(Array.from(transparent.data)).toEqual(Array.from(index, (k) => withAlpha[k]!).flat());
    for (const depth of [1, 2, 4] as const) {
      const max = (1 << depth) - 1;
      const values = Array.from({ length: w * h }, (_, i) => (i * 5) % (max + 1));
      // rows of packed samples, each row starting on a byte boundary
      const rowBytes = Math.ceil((w * depth) / 8);
      const packed = new Uint8Array(rowBytes * h);
      values.forEach((v, i) => {
        const [y, x] = [Math.floor(i / w), i % w];
        packed[y * rowBytes + ((x * depth) >> 3)]! |= v << (8 - depth - ((x * depth) & 7));
      });
      const grey = decodePng(fastPngEncode({ width: w, height: h, data: packed, depth, channels: 1 }));
      expect(Array.from(grey.data), `${depth}-bit grey`).toEqual(
        values.map((v) => Math.round((v * 255) / max)),
      );
    }
    const original = image(3, 9, 7);
    const interlaced = fastPngEncode(
      { width: 9, height: 7, data: original.data, depth: 8, channels: 3 },
      { interlace: 'Adam7' },
    );
    expect(decodePng(interlaced)).toEqual(original);
  });

  it('writes atomically, leaving no temporary file, and reads back', async () => {
    const path = join(dir, 'nested', 'a.png');
    await writePng(path, image(3));
    await writePng(path, image(4)); // replaces
    expect(await readPng(path)).toEqual(image(4));
    expect(await readdir(join(dir, 'nested'))).toEqual(['a.png']);
  });

  it('a failed write leaves neither a partial file nor a temporary one', async () => {
    const blocker = join(dir, 'blocker');
    await writeFile(blocker, 'x');
    expect(await codeOf(writePng(join(blocker, 'b.png'), image(3)))).toBe('write-failed');
    // the target is a directory: rename fails after the temp file was written
    await writeFileAtomic(join(dir, 'target', 'keep.txt'), 'keep');
    expect(await codeOf(writeFileAtomic(join(dir, 'target'), 'data'))).toBe('write-failed');
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect(await readFile(join(dir, 'target', 'keep.txt'), 'utf8')).toBe('keep');
  });

  it('rejects broken bytes and malformed images', async () => {
    expect(await codeOf(() => decodePng(Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4, 5)))).toBe(
      'corrupt-file',
    );
    const bad = { width: 2, height: 2, channels: 3, data: new Uint8Array(5) } as RasterImage;
    expect(await codeOf(() => encodePng(bad))).toBe('invalid-shape');
  });

  it('makes data URIs', () => {
    const uri = pngDataUri(image(1));
    expect(uri.startsWith('data:image/png;base64,')).toBe(true);
    expect(decodePng(Buffer.from(uri.slice(22), 'base64'))).toEqual(image(1));
  });
});

describe('JPEG and format sniffing', () => {
  const scene = syntheticScene(32);
  const rgba = toRgba(scene);
  const jpg = new Uint8Array(jpeg.encode({ width: 32, height: 32, data: rgba.data }, 95).data);

  it('decodes JPEG close to the encoded pixels', () => {
    const decoded = decodeJpeg(jpg);
    expect([decoded.width, decoded.height, decoded.channels]).toEqual([32, 32, 3]);
    let sum = 0;
    for (let i = 0; i < decoded.data.length; i++) sum += Math.abs(decoded.data[i]! - scene.data[i]!);
    expect(sum / decoded.data.length).toBeLessThan(4);
  });

  it('reads PNG and JPEG files by signature, writes only PNG', async () => {
    await writeFile(join(dir, 'photo.bin'), jpg);
    expect((await readImage(join(dir, 'photo.bin'))).channels).toBe(3);
    await writeImage(join(dir, 'scene.png'), scene);
    expect(await readImage(join(dir, 'scene.png'))).toEqual(scene);
    expect(await codeOf(writeImage(join(dir, 'scene.jpg'), scene))).toBe('unsupported-format');
    expect(await codeOf(() => decodeImage(Uint8Array.of(0x47, 0x49, 0x46, 0x38)))).toBe('unsupported-format');
    expect(await codeOf(() => decodeJpeg(Uint8Array.of(0xff, 0xd8, 0xff, 0, 1)))).toBe('corrupt-file');
    expect(await codeOf(readImage(join(dir, 'missing.png')))).toBe('not-found');
  });
});

describe('raster helpers and ndarray interop', () => {
  it('composites RGBA over a background and expands grey', () => {
    const rgba: RasterImage = {
      width: 2,
      height: 1,
      channels: 4,
      data: Uint8Array.of(255, 0, 0, 128, 0, 0, 255, 0),
    };
    // 255 * 128/255 + 255 * (1 - 128/255) = 255; 0 + 255 * 127/255 = 127
    expect(Array.from(toRgb(rgba).data)).toEqual([255, 127, 127, 255, 255, 255]);
    expect(Array.from(toRgb(rgba, '#000').data)).toEqual([128, 0, 0, 0, 0, 0]);
    const grey: RasterImage = { width: 1, height: 1, channels: 1, data: Uint8Array.of(9) };
    expect(Array.from(toRgb(grey).data)).toEqual([9, 9, 9]);
    expect(Array.from(toRgba(grey).data)).toEqual([9, 9, 9, 255]);
    expect(() => toRgb(rgba, 'red')).toThrow(/hex string/);
  });

  it('views images as ndarrays and reads them back', () => {
    const im = image(3, 4, 2);
    const nd = rasterToNdarray(im);
    expect(nd.shape).toEqual([2, 4, 3]);
    expect(nd.get(1, 2, 0)).toBe(im.data[(1 * 4 + 2) * 3]);
    expect(toRasterImage(nd)).toEqual(im);
    // a horizontally flipped view
    const flipped = toRasterImage(nd.step(1, -1, 1));
    expect(Array.from(flipped.data.subarray(0, 3))).toEqual(Array.from(im.data.subarray(9, 12)));
  });
});
