/** The formats {@link sniffFormat} tells apart. */
export type StateDictFormat = 'pth' | 'pth-legacy' | 'safetensors' | 'unknown';

/** The pickle that starts a file of torch.save's legacy format: protocol 2, then the magic number
 * 0x1950a86a20f9469cfc6c as LONG1. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/**
 * Tells the format of a weights file from its first bytes (never from its name): `pth` for a zip archive (what
 * `torch.save` writes since PyTorch 1.6), `pth-legacy` for the older pickle stream, `safetensors` for an 8-byte
 * header length followed by a JSON object.
 */
export function sniffFormat(bytes: Uint8Array): StateDictFormat {
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) {
    return 'pth';
  }
  if (bytes.length >= LEGACY_MAGIC.length && LEGACY_MAGIC.every((b, i) => bytes[i] === b))
    return 'pth-legacy';
  if (bytes.length >= 9) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const length = view.getBigUint64(0, true);
    if (length > 0n && length <= BigInt(bytes.length - 8) && bytes[8] === 0x7b /* { */) return 'safetensors';
  }
  return 'unknown';
}

/**
 * Named tensors read from a file, whatever the format: a PyTorch `state_dict` in a `.pth` file ({@link PthFile})
 * or a safetensors file ({@link SafetensorsFile}). The model importers only need this much.
 */
export interface StateDict {
  /** Tensor names in file order (`features.0.weight`, ...). */
  readonly names: readonly string[];
  has(name: string): boolean;
  /** Element type (the format's own name: `float32` in `.pth`, `F32` in safetensors) and shape. */
  entry(name: string): { readonly dtype: string; readonly shape: readonly number[] };
  /**
   * A tensor's values as float32 in row-major order. By default a new array; with `{ copy: false }` it may be a
   * view into the file's bytes (read it, do not change it), which saves a copy of large weights.
   */
  float32(name: string, options?: { copy?: boolean }): Float32Array;
}
