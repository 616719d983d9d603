import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CrpError, describeError, isCrpError } from '@crp/common';
import { fileSystem } from '@crp/models';
import * as tfl from '@tensorflow/tfjs-layers';

/** Sizes of a saved model in bytes. */
export interface SavedModelInfo {
  dir: string;
  modelJsonBytes: number;
  weightBytes: number;
  totalBytes: number;
}

/**
 * Saves a layers model as `dir/model.json` + `dir/weights.bin` through `fileSystem` from `@crp/models` (atomic:
 * written to a temporary sibling directory that is renamed into place) and reports the file sizes.
 *
 * @throws CrpError `write-failed` (or `invalid-argument` for a target that is not a model directory) when the
 *   model cannot be written.
 */
export async function saveModel(model: tfl.LayersModel, dir: string): Promise<SavedModelInfo> {
  try {
    await model.save(fileSystem(dir));
  } catch (err) {
    // fileSystem's own errors say which kind of failure it was
    const code = isCrpError(err) ? err.code : 'write-failed';
    throw new CrpError(code, `could not save the model to ${dir}: ${describeError(err)}`, {
      cause: err,
      details: { path: dir },
    });
  }
  const modelJsonBytes = (await stat(join(dir, 'model.json'))).size;
  const weightBytes = (await stat(join(dir, 'weights.bin'))).size;
  return { dir, modelJsonBytes, weightBytes, totalBytes: modelJsonBytes + weightBytes };
}

/** Loads a model saved by {@link saveModel} (or any TF.js layers model.json with its weight files). */
export function loadModel(dir: string): Promise<tfl.LayersModel> {
  return tfl.loadLayersModel(fileSystem(dir));
}
