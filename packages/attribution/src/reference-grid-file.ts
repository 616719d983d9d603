import { writePng } from '@crp/vis/node';
import { type ReferenceGridOptions, type ReferenceImages, referenceGrid } from './reference-images.js';

/** Writes `referenceGrid(refs, options)` as a PNG (atomically). @throws CrpError `write-failed`. */
export async function writeReferenceGrid(
  path: string,
  refs: ReferenceImages,
  options: ReferenceGridOptions = {},
): Promise<void> {
  await writePng(path, referenceGrid(refs, options));
}
