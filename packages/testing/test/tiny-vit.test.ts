/**
 * The tiny ViT fixture without @crp/models (which depends on this package): the config, the builders called with
 * it, and the weights drawn in call order from one mulberry32 stream (LayerNorm scales in [0.8, 1.2), the rest in
 * [-0.6, 0.6)). The images need a backend, which this package does not register: the suites that use them check them.
 */
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../src/seeded.js';
import { TINY_VIT, type TinyVitConfig, tinyVit, tinyVitConfig, tinyVitWeights } from '../src/tiny-vit.js';

describe('the tiny ViT fixture', () => {
  it('draws the weights in call order from one stream: LayerNorm scales near 1, the rest small and signed', () => {
    const get = tinyVitWeights(5);
    const rng = mulberry32(5);
    for (const [name, n, lo, hi] of [
      ['conv_proj.weight', 12, -0.6, 0.6],
      ['encoder.layers.encoder_layer_0.ln_1.weight', 8, 0.8, 1.2],
      ['encoder.layers.encoder_layer_0.ln_1.bias', 8, -0.6, 0.6],
      ['encoder.ln.weight', 8, 0.8, 1.2],
    ] as const) {
      const v = get(name, [n]);
      expect(v).toBeInstanceOf(Float32Array);
      expect(Array.from(v)).toEqual(Array.from({ length: n }, () => Math.fround(lo + (hi - lo) * rng())));
    }
  });

  it('builds with the given heads, blocks and seed', () => {
    const calls: string[] = [];
    const builders = {
      vit: (c: TinyVitConfig) => ({ c }),
      setVitWeights: (
        m: { c: TinyVitConfig },
        c: TinyVitConfig,
        get: (n: string, s: number[]) => Float32Array,
      ) => {
        expect(c).toBe(m.c);
        calls.push(`${c.numHeads} ${c.numLayers} ${get('x', [1])[0]}`);
      },
    };
    expect(tinyVit(builders).c).toEqual(TINY_VIT);
    tinyVit(builders, { numHeads: 4, numLayers: 2, seed: 3 });
    const first = (seed: number) => Math.fround(-0.6 + 1.2 * mulberry32(seed)());
    expect(calls).toEqual([`2 1 ${first(5)}`, `4 2 ${first(3)}`]);
    expect(tinyVitConfig({ numHeads: 4 })).toEqual({ ...TINY_VIT, numHeads: 4 });
  });
});
