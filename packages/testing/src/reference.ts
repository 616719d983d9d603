/** Where the vendored reference data lies (no vitest import: also read by the bench). */
import { join } from 'node:path';

/** The repository's vendor/reference folder: the golden cases of zennit, zennit-crp, LXT and the ONNX exports
 * (vendor/reference/PROVENANCE.md says where each comes from). */
export const REFERENCE_DIR = join(import.meta.dirname, '..', '..', '..', 'vendor', 'reference');

/** A path below vendor/reference: `referencePath('onnx', 'models', 'densenet_like.onnx')`. */
export function referencePath(...parts: string[]): string {
  return join(REFERENCE_DIR, ...parts);
}
