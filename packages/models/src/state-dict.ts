import { CrpError } from '@crp/common';
import { PthFile } from './pth.js';
import { SafetensorsFile } from './safetensors.js';
import { sniffFormat } from './weights-format.js';

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

/**
 * Parses weights in either format, told apart by their bytes: a `.pth`/`.pt` file of `torch.save` ({@link PthFile})
 * or a safetensors file ({@link SafetensorsFile}).
 *
 * @param source names the file in messages
 * @throws CrpError `unsupported-format` for the legacy `.pth` format (the message says how to re-save it) and
 *   for bytes of neither format, and the errors of the two parsers
 */
export function parseStateDict(bytes: Uint8Array, source = 'the weights'): PthFile | SafetensorsFile {
  const format = sniffFormat(bytes);
  if (format === 'safetensors') return SafetensorsFile.parse(bytes, source);
  if (format === 'pth' || format === 'pth-legacy') return PthFile.parse(bytes, source);
  throw new CrpError(
    'unsupported-format',
    `${source} is neither a PyTorch .pth file (a zip archive written by torch.save) nor a safetensors file; valid: torch.save(model.state_dict(), 'state_dict.pth') with PyTorch >= 1.6, or safetensors`,
    { details: { source } },
  );
}
