/**
 * resetParameters of a separable convolution: PyTorch writes it as a depthwise conv (Conv2d with groups = in,
 * fan_in kh * kw) followed by a 1x1 conv (fan_in in * depth multiplier, which also owns the bias). Each kernel draws in
 * its own +-1/sqrt(fan_in); one fan_in of kh * kw * in for all three made every bound wrong.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { resetParameters } from '../src/index.js';
import { useBackend } from './helpers.js';

describe('resetParameters of a SeparableConv2D', () => {
  useBackend('cpu');

  it('draws the depthwise kernel in +-1/sqrt(kh*kw), the pointwise kernel and bias in +-1/sqrt(in*multiplier)', () => {
    const sep = tfl.layers.separableConv2d({
      inputShape: [6, 6, 8],
      filters: 16,
      kernelSize: 3,
      depthMultiplier: 2,
    });
    const dw = tfl.layers.depthwiseConv2d({ inputShape: [6, 6, 8], kernelSize: 3, depthMultiplier: 2 });
    const m1 = tfl.sequential({ layers: [sep] });
    const m2 = tfl.sequential({ layers: [dw] });
    const [depthwise, pointwise, bias] = resetParameters(sep, 7);
    const [alone] = resetParameters(dw, 7);
    expect(depthwise!.shape).toEqual([3, 3, 8, 2]);
    expect(pointwise!.shape).toEqual([1, 1, 16, 16]);
    const maxAbs = (t: tf.Tensor) => Math.max(...Array.from(t.dataSync(), Math.abs));
    // the depthwise kernel is the DepthwiseConv2D's own draw (the same seed, the same fan_in)
    expect(Array.from(depthwise!.dataSync())).toEqual(Array.from(alone!.dataSync()));
    const dwBound = 1 / 3;
    const pwBound = 1 / Math.sqrt(16);
    // 144, 256 and 16 uniform draws reach above 0.8 of their bound (seeded, so this is no matter of luck)
    expect(maxAbs(depthwise!)).toBeLessThanOrEqual(dwBound);
    expect(maxAbs(depthwise!)).toBeGreaterThan(0.8 * dwBound);
    expect(maxAbs(pointwise!)).toBeLessThanOrEqual(pwBound);
    expect(maxAbs(pointwise!)).toBeGreaterThan(0.8 * pwBound);
    expect(maxAbs(bias!)).toBeLessThanOrEqual(pwBound);
    expect(maxAbs(bias!)).toBeGreaterThan(0.5 * pwBound);
    tf.dispose([depthwise!, pointwise!, bias!, alone!]);
    m1.dispose();
    m2.dispose();
  });
});
