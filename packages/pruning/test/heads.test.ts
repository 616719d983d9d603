/**
 * Attention heads as prunable concepts, on the tiny ViT of the attribution tests (8x8 images in 2x2 patches of 4
 * pixels, 1 block, 2 heads of 4 features, MLP 12, 3 classes, seeded weights): a head's mask zeroes exactly its
 * attention output and leaves the other head's bits alone; out_proj then computes, summed by hand in float64, from
 * the merged heads with the masked head's slice set to 0; the logits equal those of the same model with out_proj's
 * rows of that slice zeroed (the definition: the head's slice of the attention output is 0 before out_proj).
 * Masks are checked (heads out of range, all heads); export refuses heads with a message that points to the masked
 * model, and removes MLP neurons physically (GELU maps 0 to 0) with the masked model's logits. No tensor is left.
 */
import { vit } from '@crp/models';
import { setVitWeights } from '@crp/models/internal';
import { tinyVit, tinyVitImages } from '@crp/testing/tiny-vit';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChannelMask, checkMask, exportPruned, headLayers, MaskedModel } from '../src/index.js';
import { expectClose, expectCrpError, layerOutputs, predictValues, useBackend, values } from './helpers.js';

useBackend('cpu');

const B = 'encoder.layers.encoder_layer_0.';
const A = `${B}self_attention.`;
const HEADS = `${A}context`;
const TOKENS = 5;
const D = 8;
const DH = 4;

let model: tfl.LayersModel;
let images: tf.Tensor4D;

function seeded(): tfl.LayersModel {
  return tinyVit({ vit, setVitWeights });
}

beforeAll(() => {
  model = seeded();
  images = tinyVitImages(4);
});
afterAll(() => {
  model.dispose();
  images.dispose();
});

describe('attention heads in masks', () => {
  it('are found at the attention product, with the value projection they are masked through', () => {
    expect(headLayers(model)).toEqual([{ name: HEADS, heads: 2, headDim: DH, valueLayer: `${A}v_proj` }]);
  });

  it("zero exactly the masked head's attention output; out_proj sees its slice as 0 (summed by hand)", async () => {
    const [context, merge] = layerOutputs(model, images, [HEADS, `${A}merge`]);
    const masked = await MaskedModel.create(model, ChannelMask.of({ [HEADS]: [1] }));
    try {
      const [mContext, mOut] = layerOutputs(masked.model, images, [HEADS, `${A}out_proj`]);
      // context [4, heads, tokens, dh]: head 1 exactly 0, head 0 bit for bit the original's
      const per = TOKENS * DH;
      for (let s = 0; s < 4; s++) {
        const h0 = s * 2 * per;
        const h1 = h0 + per;
        expect(Array.from(mContext!.subarray(h0, h0 + per))).toEqual(
          Array.from(context!.subarray(h0, h0 + per)),
        );
        expect(Array.from(mContext!.subarray(h1, h1 + per)).every((v) => v === 0)).toBe(true);
      }
      // out_proj by hand: the original merged heads [4, tokens, D] with head 1's features (4..7) set to 0
      const [kernel, bias] = model.getLayer(`${A}out_proj`).getWeights().map(values);
      const expected = new Float64Array(4 * TOKENS * D);
      for (let r = 0; r < 4 * TOKENS; r++) {
        for (let o = 0; o < D; o++) {
          let sum = bias![o]!;
          for (let i = 0; i < DH; i++) sum += merge![r * D + i]! * kernel![i * D + o]!;
          expected[r * D + o] = sum;
        }
      }
      expectClose(mOut!, expected, 1e-6);
      // the logits: those of the model whose out_proj ignores the slice (its rows 4..7 zeroed)
      const rows = seeded();
      const out = rows.getLayer(`${A}out_proj`);
      const [k, b] = out.getWeights();
      const keep = tf.tensor2d(
        Array.from({ length: D }, (_, i) => (i < DH ? 1 : 0)),
        [D, 1],
      );
      const zeroed = tf.mul(k!, keep);
      out.setWeights([zeroed, b!]);
      expectClose(predictValues(masked.model, images), predictValues(rows, images), 1e-5);
      for (const t of [keep, zeroed]) t.dispose();
      rows.dispose();
      // and back: the empty mask restores the original context
      masked.restore();
      expect(Array.from(layerOutputs(masked.model, images, [HEADS])[0]!)).toEqual(Array.from(context!));
    } finally {
      masked.dispose();
    }
  });

  it('combine with MLP neurons and are checked: range, all heads, unknown layers', async () => {
    const both = ChannelMask.of({ [HEADS]: [0], [`${B}mlp.0`]: [2, 7] });
    const masked = await MaskedModel.create(model, both);
    const [context, mlp] = layerOutputs(masked.model, images, [HEADS, `${B}mlp.0`]);
    for (let s = 0; s < 4; s++) {
      expect(
        Array.from(context!.subarray(s * 2 * TOKENS * DH, (s * 2 + 1) * TOKENS * DH)).every((v) => v === 0),
      ).toBe(true);
      for (let t = 0; t < TOKENS; t++)
        for (const c of [2, 7]) expect(mlp![(s * TOKENS + t) * 12 + c]).toBe(0);
    }
    masked.dispose();
    await expectCrpError(
      () => checkMask(model, ChannelMask.of({ [HEADS]: [2] })),
      'invalid-argument',
      `head 2 is out of range for layer '${HEADS}': it has 2 heads (valid: 0..1)`,
    );
    await expectCrpError(
      () => checkMask(model, ChannelMask.of({ [HEADS]: [0, 1] })),
      'invalid-argument',
      'prunes all 2 heads',
    );
    await expectCrpError(
      () => checkMask(model, ChannelMask.of({ [`${A}scores`]: [0] })),
      'unknown-layer',
      'has no prunable channels',
      HEADS,
    );
  });
});

describe('export of a pruned ViT', () => {
  it('refuses heads, naming the masked model', async () => {
    await expectCrpError(
      () => exportPruned(model, ChannelMask.of({ [HEADS]: [1] })),
      'unsupported-model',
      `cannot remove heads of '${HEADS}' physically`,
      'use the masked model (MaskedModel)',
    );
  });

  it('removes MLP neurons (GELU maps 0 to 0) and computes what the masked model computes', async () => {
    const mask = ChannelMask.of({ [`${B}mlp.0`]: [2, 5, 11] });
    const masked = await MaskedModel.create(model, mask);
    const small = await exportPruned(model, mask);
    expect(small.getLayer(`${B}mlp.0`).getWeights()[0]!.shape).toEqual([D, 9]);
    expect(small.getLayer(`${B}mlp.3`).getWeights()[0]!.shape).toEqual([9, D]);
    expectClose(predictValues(small, images), predictValues(masked.model, images), 1e-5);
    small.dispose();
    masked.dispose();
  });

  it('leaves no tensor behind', async () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const masked = await MaskedModel.create(model, ChannelMask.of({ [HEADS]: [i % 2] }));
      masked.setMask(ChannelMask.of({ [HEADS]: [(i + 1) % 2] }));
      masked.dispose();
      checkMask(model, ChannelMask.of({ [HEADS]: [0] }));
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
