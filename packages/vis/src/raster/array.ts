import { CrpError } from '@crp/common';

/** Anything shaped like a `tf.Tensor`: a `shape` and a synchronous `dataSync()` (TF.js is never imported). */
export interface TensorLike {
  /** Dimensions, e.g. `[1, 224, 224, 3]`. */
  readonly shape: readonly number[];
  /** Element type (`'float32'`, `'int32'`, ...); the typed array of `dataSync()` decides the arithmetic. */
  readonly dtype?: string;
  /** The values in row-major order (downloads GPU data; the tensor is not disposed). */
  dataSync(): ArrayLike<number>;
}

/** Anything shaped like an `ndarray` (scijs): data with shape, stride and offset, possibly not contiguous. */
export interface NdArrayLike {
  /** The backing store. */
  readonly data: ArrayLike<number>;
  /** Dimensions. */
  readonly shape: readonly number[];
  /** Step in `data` per index of each dimension. */
  readonly stride: readonly number[];
  /** Position in `data` of the first element. */
  readonly offset: number;
}

/** A plain typed array (or number array) plus its row-major shape. */
export interface ShapedArray {
  /** Row-major values: a typed array (its type decides the arithmetic) or numbers. */
  readonly data: ArrayLike<number>;
  /** Dimensions; their product must equal `data.length`. */
  readonly shape: readonly number[];
}

/** Every array input `@crp/vis` accepts: a `tf.Tensor`, an `ndarray`, or `{ data, shape }`. */
export type ArrayInput = TensorLike | NdArrayLike | ShapedArray;

/**
 * Element type of a {@link DenseArray}. It decides the arithmetic of normalisation, as numpy's dtype does in
 * zennit: `float32` data is normalised in float32, `float64` (and plain number arrays, and integer arrays other
 * than uint8) in float64, and `uint8` data is taken as pixel values without normalisation.
 */
export type DenseDtype = 'float32' | 'float64' | 'uint8';

/** A contiguous row-major array with its shape and element type. The data may be shared with the input. */
export interface DenseArray {
  /** Row-major values. */
  readonly data: ArrayLike<number>;
  /** Dimensions. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DenseDtype;
}

function dtypeOf(data: ArrayLike<number>): DenseDtype {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Uint8Array || data instanceof Uint8ClampedArray) return 'uint8';
  return 'float64';
}

function isTensorLike(input: unknown): input is TensorLike {
  return typeof (input as TensorLike).dataSync === 'function' && Array.isArray((input as TensorLike).shape);
}

function isNdArrayLike(input: unknown): input is NdArrayLike {
  const nd = input as NdArrayLike;
  return Array.isArray(nd.stride) && typeof nd.offset === 'number' && nd.data !== undefined;
}

/** Number of elements of a shape; throws `invalid-shape` for entries that are not non-negative integers. */
export function shapeSize(shape: readonly number[], what = 'array'): number {
  let size = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new CrpError(
        'invalid-shape',
        `${what} has shape [${shape.join(', ')}]; every dimension must be a non-negative integer`,
      );
    }
    size *= d;
  }
  return size;
}

/**
 * Reads any {@link ArrayInput} into a contiguous row-major {@link DenseArray}. Contiguous typed arrays are used
 * without copying (never modified); strided ndarrays are copied.
 *
 * @throws CrpError `invalid-shape` if the data length does not match the shape.
 */
export function toDenseArray(input: ArrayInput, what = 'array'): DenseArray {
  if (input === null || typeof input !== 'object') {
    throw new CrpError(
      'invalid-shape',
      `${what} must be a tf.Tensor, an ndarray or { data, shape }; got ${input === null ? 'null' : typeof input}`,
    );
  }
  if (isTensorLike(input)) {
    const data = input.dataSync();
    const shape = [...input.shape];
    checkLength(data.length, shape, what);
    return { data, shape, dtype: dtypeOf(data) };
  }
  if (isNdArrayLike(input)) {
    const shape = [...input.shape];
    const size = shapeSize(shape, what);
    const { data, stride, offset } = input;
    if (stride.length !== shape.length) {
      throw new CrpError(
        'invalid-shape',
        `${what}: ndarray has ${shape.length} dims but ${stride.length} strides`,
      );
    }
    let contiguous = true;
    let expected = 1;
    for (let k = shape.length - 1; k >= 0; k--) {
      if (shape[k]! > 1 && stride[k] !== expected) contiguous = false;
      expected *= shape[k]!;
    }
    if (contiguous && offset === 0 && data.length === size) return { data, shape, dtype: dtypeOf(data) };
    const dtype = dtypeOf(data);
    const out =
      dtype === 'float32'
        ? new Float32Array(size)
        : dtype === 'uint8'
          ? new Uint8Array(size)
          : new Float64Array(size);
    const index = new Array<number>(shape.length).fill(0);
    for (let i = 0; i < size; i++) {
      let at = offset;
      for (let k = 0; k < shape.length; k++) at += index[k]! * stride[k]!;
      const v = data[at];
      if (v === undefined) {
        throw new CrpError('invalid-shape', `${what}: ndarray reads outside its data at position ${at}`);
      }
      out[i] = v;
      for (let k = shape.length - 1; k >= 0; k--) {
        index[k]!++;
        if (index[k]! < shape[k]!) break;
        index[k] = 0;
      }
    }
    return { data: out, shape, dtype };
  }
  const shaped = input as ShapedArray;
  if (shaped.data === undefined || !Array.isArray(shaped.shape)) {
    throw new CrpError('invalid-shape', `${what} must be a tf.Tensor, an ndarray or { data, shape }`);
  }
  checkLength(shaped.data.length, shaped.shape, what);
  return { data: shaped.data, shape: [...shaped.shape], dtype: dtypeOf(shaped.data) };
}

function checkLength(length: number, shape: readonly number[], what: string): void {
  const size = shapeSize(shape, what);
  if (size !== length) {
    throw new CrpError(
      'invalid-shape',
      `${what} has ${length} values but shape [${shape.join(', ')}] needs ${size}`,
    );
  }
}

/** Throws `invalid-value` if any value is NaN or infinite (naming the first such position). */
export function assertFinite(data: ArrayLike<number>, what = 'array'): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      throw new CrpError(
        'invalid-value',
        `${what} contains ${data[i]} at flat index ${i}; only finite numbers can be shown`,
      );
    }
  }
}
