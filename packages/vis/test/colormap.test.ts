import { CrpError } from '@crp/common';
import { describe, expect, it } from 'vitest';
import { BUILTIN_COLOR_MAPS, builtinColorMapNames, ColorMap, getColorMap, palette } from '../src/index.js';
import { loadGolden } from './golden.js';

const golden = loadGolden();

function thrown(fn: () => unknown): CrpError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CrpError) return err;
    throw err;
  }
  throw new Error('expected a CrpError');
}

describe('palettes match zennit byte for byte', () => {
  it('covers every built-in map and the source cases', () => {
    const names = new Set(golden.palette.map((c) => c.cmap));
    for (const name of builtinColorMapNames()) expect(names.has(name), name).toBe(true);
    expect(golden.palette.length).toBeGreaterThanOrEqual(34);
  });

  it.each(golden.palette.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    const ours = palette(c.cmap, c.level);
    expect(ours).toBeInstanceOf(Uint8Array);
    expect(ours.length).toBe(256 * 3);
    expect(Array.from(ours)).toEqual(c.palette.data);
  });
});

describe('ColorMap', () => {
  it('maps gray to the identity palette and bwr ends and middle', () => {
    const gray = palette('gray');
    for (let k = 0; k < 256; k++) expect([gray[k * 3], gray[k * 3 + 1], gray[k * 3 + 2]]).toEqual([k, k, k]);
    const bwr = getColorMap('bwr');
    expect(bwr.map(0)).toEqual([0, 0, 1]);
    expect(bwr.map(1)).toEqual([1, 0, 0]);
    // t = 127.5 lies between nodes 0 (00f) and 128 (fff): alpha = 127.5 / 128
    const mid = bwr.map(0.5);
    expect(mid[0]).toBeCloseTo(127.5 / 128, 12);
    expect(mid[2]).toBe(1);
    // clipping
    expect(bwr.map(-3)).toEqual([0, 0, 1]);
    expect(bwr.map(7)).toEqual([1, 0, 0]);
  });

  it('compiles nodes as zennit does', () => {
    const indices = (src: string) => new ColorMap(src).nodes.map((n) => n.index);
    // unindexed colours spread evenly: int(255 / 3) and int(2 * 255 / 3)
    expect(indices(BUILTIN_COLOR_MAPS.hot)).toEqual([0, 85, 170, 255, 256]);
    // 00f halfway to 80; f00, ff0 at thirds between 0x80 and 255
    expect(indices(BUILTIN_COLOR_MAPS.coldnhot)).toEqual([0, 64, 128, 170, 212, 255, 256]);
    expect(indices('000,40:f00,c0:ff0,fff')).toEqual([0, 64, 192, 255, 256]);
    // a 1-digit index is doubled: 8 = 0x88
    expect(indices('000,8:fff')).toEqual([0, 136, 256]);
    // a first colour with an index > 0 is also placed at 0
    const first = new ColorMap('40:f00,fff').nodes;
    expect(first.map((n) => n.index)).toEqual([0, 64, 255, 256]);
    expect(first[0]!.color).toEqual([255, 0, 0]);
    expect(first[3]!.color).toEqual([255, 255, 255]);
    // 6-digit colours
    expect(new ColorMap('0055a4,ef4135').nodes[0]!.color).toEqual([0, 0x55, 0xa4]);
  });

  it('accepts whitespace and a trailing comma like zennit', () => {
    expect(palette(' 00f , 80:fff ,\tf00 ')).toEqual(palette('bwr'));
    expect(palette('000,fff,')).toEqual(palette('gray'));
    expect(palette('000,FFF')).toEqual(palette('gray'));
  });

  it('level narrows or saturates the palette', () => {
    const half = palette('gray', 0.5);
    expect([half[0], half[255 * 3]]).toEqual([63, 191]);
    // level 2: x_k = clip(((2k/255 - 1) * 2 + 1) / 2, 0, 1); k = 64 gives 255 x = 0.5, k = 191 gives 254.5
    const two = palette('gray', 2);
    expect([two[63 * 3], two[64 * 3], two[65 * 3], two[191 * 3], two[192 * 3]]).toEqual([0, 0, 2, 254, 255]);
    expect(() => palette('gray', Number.NaN)).toThrow(CrpError);
  });
});

describe('colour-map source errors point at the offending character', () => {
  const cases: [string, string, number, RegExp][] = [
    ['00f,8g:fff', 'invalid-colormap', 5, /unexpected character "g"/],
    ['viridis', 'invalid-colormap', 0, /unexpected character "v"/],
    ['00f,80fff', 'invalid-colormap', 7, /3 or 6 hex digits/],
    ['00f,:fff', 'invalid-colormap', 4, /':' must follow an index/],
    ['00f,,f00', 'invalid-colormap', 4, /',' must follow a colour/],
    ['f00 0f0', 'invalid-colormap', 4, /expected ','/],
    ['00f,80 fff', 'invalid-colormap', 7, /expected ':'/],
    ['00f,80:', 'invalid-colormap', 7, /ends after/],
    ['000,80:f00,40:fff', 'invalid-colormap', 11, /must rise/],
  ];
  it.each(cases)('%s', (source, code, index, pattern) => {
    const err = thrown(() => new ColorMap(source));
    expect(err.code).toBe(code);
    expect(err.details.index).toBe(index);
    expect(err.message).toMatch(pattern);
    const lines = err.message.split('\n');
    const at = lines.indexOf(`  ${source}`);
    expect(at).toBeGreaterThan(-1);
    expect(lines[at + 1]).toBe(`  ${' '.repeat(index)}^`);
  });

  it('says what is valid', () => {
    const err = thrown(() => getColorMap('viridis'));
    expect(err.message).toMatch(/3 or 6 hex digits/);
    expect(err.message).toMatch(/built-in name: gray, wred, wblue, hot, cold, coldnhot, bwr/);
  });

  it('needs two colours', () => {
    for (const source of ['', 'fff', '  80:fff ']) {
      expect(thrown(() => new ColorMap(source)).code).toBe('invalid-colormap');
    }
  });
});
