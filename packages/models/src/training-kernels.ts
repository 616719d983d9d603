import * as tf from '@tensorflow/tfjs-core';

type Backend = tf.KernelBackend & {
  makeTensorInfo?: (shape: number[], dtype: tf.DataType, values: Float32Array) => tf.TensorInfo;
  makeOutput?: (
    shape: number[],
    dtype: tf.DataType,
    memoryOffset?: number,
    values?: Float32Array,
  ) => tf.TensorInfo;
};

interface Conv2DBackpropFilterAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

/**
 * The gradient of a 2-D convolution with respect to its filter (the `Conv2DBackpropFilter` kernel), in plain
 * JavaScript over flat arrays (NHWC, any stride and padding, dilation 1):
 * `dW[fh, fw, ci, co] = Σ x[b, y·s + fh - top, x·s + fw - left, ci] · dy[b, y, x, co]`.
 */
function conv2dBackpropFilter(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const backend = args.backend as Backend;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } =
    args.attrs as unknown as Conv2DBackpropFilterAttrs;
  if (dataFormat === 'NCHW') throw new Error('Conv2DBackpropFilter (@crp/models): only NHWC is supported');
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const xs = backend.readSync(x.dataId) as Float32Array;
  const dys = backend.readSync(dy.dataId) as Float32Array;
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const dw = new Float32Array(filterHeight * filterWidth * inChannels * outChannels);
  for (let b = 0; b < batchSize; b++) {
    for (let yr = 0; yr < outHeight; yr++) {
      for (let yc = 0; yc < outWidth; yc++) {
        const dyOff = ((b * outHeight + yr) * outWidth + yc) * outChannels;
        for (let fh = 0; fh < filterHeight; fh++) {
          const xr = yr * strideHeight + fh - top;
          if (xr < 0 || xr >= inHeight) continue;
          for (let fw = 0; fw < filterWidth; fw++) {
            const xc = yc * strideWidth + fw - left;
            if (xc < 0 || xc >= inWidth) continue;
            const xOff = ((b * inHeight + xr) * inWidth + xc) * inChannels;
            const wOff = (fh * filterWidth + fw) * inChannels * outChannels;
            for (let ci = 0; ci < inChannels; ci++) {
              const xv = xs[xOff + ci]!;
              if (xv === 0) continue; // inputs after a ReLU are often 0
              const base = wOff + ci * outChannels;
              for (let co = 0; co < outChannels; co++) dw[base + co]! += xv * dys[dyOff + co]!;
            }
          }
        }
      }
    }
  }
  if (backend.makeTensorInfo !== undefined) return backend.makeTensorInfo(filterShape, 'float32', dw);
  if (backend.makeOutput !== undefined) return backend.makeOutput(filterShape, 'float32', undefined, dw);
  throw new Error(
    'Conv2DBackpropFilter (@crp/models): this backend cannot take kernel outputs from JavaScript',
  );
}

/** Options of {@link registerTrainingKernels}. */
export interface TrainingKernelOptions {
  /**
   * Also replace the `cpu` backend's own `Conv2DBackpropFilter` (correct but about 50 times slower in TF.js 4.22).
   * Default false.
   */
  replaceCpu?: boolean;
}

/**
 * Makes convolutional networks trainable on TF.js' wasm backend, which has no `Conv2DBackpropFilter` kernel (the
 * filter gradient of `conv2d`): registers one written in JavaScript for `wasm` (only where none is registered).
 * {@link train} calls it; call it yourself to use `model.fit` or `optimizer.minimize` on wasm. Calling it again
 * does nothing.
 */
export function registerTrainingKernels(options: TrainingKernelOptions = {}): void {
  const backends = options.replaceCpu === true ? ['wasm', 'cpu'] : ['wasm'];
  for (const backendName of backends) {
    const existing = tf.getKernel('Conv2DBackpropFilter', backendName);
    if (existing?.kernelFunc === conv2dBackpropFilter) continue;
    if (existing !== undefined) {
      if (backendName !== 'cpu') continue;
      tf.unregisterKernel('Conv2DBackpropFilter', backendName);
    }
    tf.registerKernel({
      kernelName: 'Conv2DBackpropFilter',
      backendName,
      kernelFunc: conv2dBackpropFilter as tf.KernelFunc,
    });
  }
}
