import * as tf from '@tensorflow/tfjs-core';

/** The parts of TF.js' wasm backend (4.22) that let JavaScript read and write tensors in its heap without a copy. */
interface WasmHeapBackend {
  refCount(dataId: tf.DataId): number;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: tf.DataId): boolean;
  wasm: { HEAPU8: Uint8Array };
}

/** The wasm backend when it is the current one and has the heap access this file uses (else undefined). */
function wasmHeap(): WasmHeapBackend | undefined {
  if (tf.getBackend() !== 'wasm') return undefined;
  const backend = tf.backend() as unknown as Partial<WasmHeapBackend>;
  return typeof backend.typedArrayFromHeap === 'function' &&
    typeof backend.makeOutput === 'function' &&
    typeof backend.refCount === 'function' &&
    typeof backend.disposeData === 'function' &&
    backend.wasm?.HEAPU8 !== undefined
    ? (backend as WasmHeapBackend)
    : undefined;
}

/** Bytes of the wasm heap (its high-water mark: the heap grows up to 4 GiB and never shrinks); undefined off wasm. */
export function wasmHeapBytes(): number | undefined {
  return wasmHeap()?.wasm.HEAPU8.buffer.byteLength;
}

/**
 * The values of a float32 tensor, to READ ONLY and only until the backend allocates again: on wasm a view into its
 * heap (no copy of a 411 MB weight), elsewhere `dataSync()` (which may be the backend's own array).
 */
export function readFloat32(t: tf.Tensor): Float32Array {
  const heap = wasmHeap();
  if (heap !== undefined) return heap.typedArrayFromHeap(t) as Float32Array;
  return t.dataSync() as Float32Array;
}

/**
 * The heap memory of a float32 tensor that nothing else uses, to overwrite: on wasm, when no other tensor shares its
 * data; undefined otherwise (other backends, shared data). The tensor then holds what was written.
 */
export function exclusiveFloat32(t: tf.Tensor): Float32Array | undefined {
  const heap = wasmHeap();
  if (heap === undefined || t.dtype !== 'float32' || heap.refCount(t.dataId) !== 1) return undefined;
  return heap.typedArrayFromHeap(t) as Float32Array;
}

/**
 * A new float32 tensor whose values `fill` writes: on wasm straight into the heap (no copy in JavaScript memory),
 * elsewhere into a new array. `fill` must not call TF.js. The caller owns the tensor.
 */
export function writeFloat32(shape: number[], fill: (values: Float32Array) => void): tf.Tensor {
  const heap = wasmHeap();
  if (heap === undefined) {
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
    fill(values);
    return tf.tensor(values, shape, 'float32');
  }
  const info = heap.makeOutput(shape, 'float32');
  try {
    fill(heap.typedArrayFromHeap(info) as Float32Array);
  } catch (err) {
    // no tensor holds the memory yet: free it here, or the heap keeps it for good
    heap.disposeData(info.dataId);
    throw err;
  }
  return tf.engine().makeTensorFromTensorInfo(info, tf.backend());
}
