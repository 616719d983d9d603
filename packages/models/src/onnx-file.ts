import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import { CrpError, fileError } from '@crp/common';
import { writeFileAtomic } from '@crp/common/node';
import type * as tfl from '@tensorflow/tfjs-layers';
import { importOnnx, type OnnxImportOptions } from './onnx-import.js';
import { type OnnxModel, parseOnnxModel } from './onnx-proto.js';
import { encodeOnnx } from './onnx-writer.js';

/**
 * Reads an `.onnx` file into a TF.js model (see {@link importOnnx}), with the external data files its tensors
 * name (`location`, relative to the model file, as `onnx.save_model(..., save_as_external_data=True)` writes
 * them).
 *
 * @returns a new model that the caller owns
 * @throws CrpError `not-found` / `read-failed` when the model file cannot be read, `not-found` for a missing
 *   external data file (named), `unsafe-content` for an external location outside the model's folder, and the
 *   errors of {@link importOnnx}
 */
export async function readOnnx(
  path: string,
  options: Omit<OnnxImportOptions, 'externalData'> = {},
): Promise<tfl.LayersModel> {
  const { parsed, externalData } = await readOnnxFiles(path);
  return importOnnx(parsed, { ...options, externalData });
}

/** The bytes of an `.onnx` file and a reader of the external data files beside it that its tensors name (a file
 * that does not exist reads as undefined: the importer and the writer name it and the tensor). */
async function readOnnxFiles(path: string): Promise<{
  bytes: Uint8Array;
  parsed: OnnxModel;
  externalData: (location: string) => Uint8Array | undefined;
}> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw fileError('read', path, err, 'ONNX model');
  }
  const model = parseOnnxModel(bytes);
  const files = new Map<string, Uint8Array>();
  const locations = new Set(
    model.graph.initializers.flatMap((t) => (t.external === undefined ? [] : [t.external.location ?? ''])),
  );
  for (const location of locations) {
    const relative = normalize(location);
    if (location === '' || isAbsolute(location) || relative.startsWith('..')) {
      throw new CrpError(
        'unsafe-content',
        `ONNX model ${path} names external data '${location}' outside its folder; only files beside the model are read`,
        { details: { path, location } },
      );
    }
    const file = join(dirname(path), relative);
    try {
      files.set(location, await readFile(file));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw fileError('read', file, err, 'ONNX external data');
      // missing: importOnnx names the tensor and the file
    }
  }
  return { bytes, parsed: model, externalData: (location) => files.get(location) };
}

/**
 * {@link encodeOnnx} of the `.onnx` file at `source`, with the external data files beside it: the bytes
 * {@link writeOnnx} writes, for a caller that writes them itself (after other files, or not at all when another
 * step fails).
 *
 * @throws CrpError `not-found` / `read-failed` when the source or an external data file cannot be read,
 *   `unsafe-content` for an external location outside the source's folder, and the errors of {@link encodeOnnx}
 */
export async function encodeOnnxFile(
  model: tfl.LayersModel,
  source: string,
  options: Omit<OnnxImportOptions, 'externalData'> = {},
): Promise<Uint8Array> {
  const { bytes, externalData } = await readOnnxFiles(source);
  return encodeOnnx(bytes, model, { ...options, externalData });
}

/**
 * Writes `model` (imported from the `.onnx` at `source`, then fine-tuned or pruned) as an `.onnx` file at `path`:
 * the source graph with the model's weights (see {@link encodeOnnx}), written atomically (nothing half-written).
 * Tensors the source keeps in external data files beside it are read from there and written into the one file.
 *
 * @throws CrpError `not-found` / `read-failed` when the source or an external data file cannot be read,
 *   `unsafe-content` for an external location outside the source's folder, `write-failed` when `path` cannot be
 *   written, and the errors of {@link encodeOnnx}
 */
export async function writeOnnx(
  model: tfl.LayersModel,
  source: string,
  path: string,
  options: Omit<OnnxImportOptions, 'externalData'> = {},
): Promise<void> {
  await writeFileAtomic(path, await encodeOnnxFile(model, source, options));
}
