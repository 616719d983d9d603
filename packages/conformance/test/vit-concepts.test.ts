/**
 * Concepts in a ViT through @crp/core: conditions on every d_model channel of the last block's output add up to the
 * plain AttnLRP heatmap (all relevance passes that layer), checked against LXT's heatmap of the golden set; heads
 * are refused out of range. The single-concept cases (an MLP neuron, a head) are golden cases of kind `vit`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CondAttribution, disposeCondResult, HeadConcept } from '@crp/core';
import { type VitConfig, vit } from '@crp/models';
import { setVitWeights } from '@crp/models/internal';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../src/backend.js';
import { defaultReferenceDir } from '../src/reference-dir.js';

const dir = join(defaultReferenceDir(), 'vit');
const json = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8'));

beforeAll(async () => {
  await useBackend('wasm');
});

describe('concepts of a ViT', () => {
  it('conditions on all 16 d_model channels of the last block sum to LXT’s AttnLRP heatmap', () => {
    const m = json('tiny_vit.json') as { config: VitConfig; weights: Record<string, { data: number[] }> };
    const c = json('cases/attn_lrp__tiny_vit.json');
    const model = vit(m.config);
    setVitWeights(model, m.config, (k) => Float32Array.from(m.weights[k]!.data));
    const crp = new CondAttribution(model, { composite: 'attn_lrp', canonizers: [] });
    const layer = 'encoder.layers.encoder_layer_1.add_2';
    const [n, h, w] = c.heatmap.shape as [number, number, number];
    const sum = new Float64Array(n * h * w);
    for (let image = 0; image < n; image++) {
      const x = tf.tidy(() => tf.slice(tf.tensor(c.input.data, c.input.shape), image, 1));
      const conditions = Array.from({ length: 16 }, (_, ch) => ({ y: [c.targets[image]], [layer]: [ch] }));
      const result = crp.run(x, conditions);
      const maps = result.heatmap!.dataSync();
      for (let ch = 0; ch < 16; ch++)
        for (let i = 0; i < h * w; i++) sum[image * h * w + i]! += maps[ch * h * w + i]!;
      disposeCondResult(result);
      x.dispose();
    }
    const golden = c.heatmap.data as number[];
    const max = Math.max(...golden.map(Math.abs));
    const worst = Math.max(...golden.map((g, i) => Math.abs(g - sum[i]!)));
    expect(worst).toBeLessThan(1e-4 * max);
    // and a head index out of range names the valid ones
    const x = tf.tidy(() => tf.slice(tf.tensor(c.input.data, c.input.shape), 0, 1));
    const context = 'encoder.layers.encoder_layer_1.self_attention.context';
    expect(() =>
      crp.run(x, [{ y: [0], [context]: [2] }], { maskMap: { [context]: new HeadConcept() } }),
    ).toThrowError(/head 2 is out of range .* it has 2 heads \(valid: 0\.\.1\)/);
    x.dispose();
    crp.dispose();
    model.dispose();
  });
});
