import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { CrpError, describeError, fileErrorCode } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';

/** Options of {@link fileSystem}. */
export interface FileSystemOptions {
  /**
   * Largest weight file written by `save`, in bytes: bigger models are split into `group1-shard1ofN.bin`, ...
   * (as the TF.js converter does). Default: one `weights.bin` file, as `@tensorflow/tfjs-node` writes.
   */
  shardSizeBytes?: number;
}

const MODEL_FILE = 'model.json';

/** Files that a saved model directory may hold; anything else makes `save` refuse to replace the directory. */
function isModelFile(name: string): boolean {
  return name === MODEL_FILE || name.endsWith('.bin');
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** A failed read or write of `path`: `not-found`, `read-failed` or `write-failed`, with the OS error as cause. */
function ioError(operation: 'read' | 'write', path: string, what: string, err: unknown): CrpError {
  return new CrpError(fileErrorCode(operation, err), `${what}: ${describeError(err)}`, {
    cause: err,
    details: { path },
  });
}

/**
 * A TF.js `IOHandler` that reads and writes a model on the local disk, without `@tensorflow/tfjs-node`:
 * `model.json` plus binary weight files, the format of `model.save('file://...')` and of the TF.js converter.
 *
 * - `load`: `path` is a `model.json` file or a directory that holds one; weight files are found through its
 *   `weightsManifest`, relative to the JSON file (any number of groups and shards).
 * - `save`: `path` is a directory; it gets `model.json` and `weights.bin` (or shards, see
 *   {@link FileSystemOptions.shardSizeBytes}). The files are written to a temporary sibling directory that is
 *   then renamed into place, so a reader never sees a half-written model; an existing model directory is
 *   replaced. A directory that holds other files is refused rather than replaced.
 *
 * ```ts
 * await model.save(fileSystem('out/my-model'));
 * const again = await tfl.loadLayersModel(fileSystem('out/my-model'));
 * ```
 *
 * @throws CrpError (from `load`/`save`) `not-found` / `read-failed` for a missing or unreadable model or weight
 *   file, `corrupt-file` for a model.json that is not one or weight files of the wrong size, `write-failed` when
 *   saving fails, `invalid-argument` for a save target that is not a model directory.
 */
export function fileSystem(path: string, options: FileSystemOptions = {}): tf.io.IOHandler {
  if (typeof path !== 'string' || path.length === 0) {
    throw new CrpError(
      'invalid-argument',
      `fileSystem needs a path (a directory or a model.json file), got ${String(path)}`,
    );
  }
  const { shardSizeBytes } = options;
  if (shardSizeBytes !== undefined && !(Number.isInteger(shardSizeBytes) && shardSizeBytes >= 4)) {
    throw new CrpError(
      'invalid-argument',
      `shardSizeBytes must be an integer >= 4 (bytes per weight file), got ${shardSizeBytes}`,
    );
  }
  const target = path.startsWith('file://') ? path.slice('file://'.length) : path;
  return {
    load: () => loadModelArtifacts(target),
    save: (artifacts) => saveModelArtifacts(target, artifacts, shardSizeBytes),
  };
}

async function resolveModelJson(path: string): Promise<string> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (err) {
    throw ioError(
      'read',
      path,
      `no model at '${path}' (give a model.json file or a directory that holds one)`,
      err,
    );
  }
  return info.isDirectory() ? join(path, MODEL_FILE) : path;
}

async function loadModelArtifacts(path: string): Promise<tf.io.ModelArtifacts> {
  const jsonPath = await resolveModelJson(path);
  let text: string;
  try {
    text = await readFile(jsonPath, 'utf8');
  } catch (err) {
    throw ioError(
      'read',
      jsonPath,
      `cannot read the model file '${jsonPath}' (a TF.js model.json is needed)`,
      err,
    );
  }
  let modelJSON: tf.io.ModelJSON;
  try {
    modelJSON = JSON.parse(text) as tf.io.ModelJSON;
  } catch (err) {
    throw new CrpError(
      'corrupt-file',
      `the model file '${jsonPath}' is not JSON (${describeError(err)}); a TF.js model.json is needed`,
      { cause: err, details: { path: jsonPath } },
    );
  }
  if (modelJSON === null || typeof modelJSON !== 'object' || modelJSON.modelTopology === undefined) {
    throw new CrpError(
      'corrupt-file',
      `'${jsonPath}' is not a TF.js model.json: it has no 'modelTopology' (valid: the output of model.save or the TF.js converter)`,
    );
  }
  checkWeightsManifest(modelJSON.weightsManifest, jsonPath);
  const dir = dirname(jsonPath);
  return tf.io.getModelArtifactsForJSON(modelJSON, async (manifest) => {
    const specs: tf.io.WeightsManifestEntry[] = [];
    const buffers: ArrayBuffer[] = [];
    for (const group of manifest) {
      specs.push(...group.weights);
      for (const shard of group.paths) {
        const shardPath = resolve(dir, shard);
        try {
          buffers.push(toArrayBuffer(await readFile(shardPath)));
        } catch (err) {
          throw ioError(
            'read',
            shardPath,
            `weight file '${shard}' named by '${jsonPath}' cannot be read`,
            err,
          );
        }
      }
    }
    const expected = specs.reduce((sum, spec) => sum + weightBytes(spec), 0);
    const actual = buffers.reduce((sum, b) => sum + b.byteLength, 0);
    if (expected !== actual) {
      throw new CrpError(
        'corrupt-file',
        `the weight files of '${jsonPath}' hold ${actual} bytes but its weightsManifest describes ${expected} bytes; the files do not belong to this model.json`,
      );
    }
    const weightData: tf.io.WeightData = buffers.length === 1 ? buffers[0]! : buffers;
    return [specs, weightData];
  });
}

/**
 * Refuses a `weightsManifest` that is not a list of `{ paths: string[], weights: [{ name, shape, dtype }] }` with
 * shapes of non-negative integers, before TF.js walks it (its own errors would be TypeErrors).
 */
function checkWeightsManifest(manifest: unknown, jsonPath: string): void {
  const bad = (what: string): never => {
    throw new CrpError(
      'corrupt-file',
      `the weightsManifest of '${jsonPath}' ${what}; valid: a list of { paths: [file names], weights: [{ name, shape, dtype }] }, as model.save writes it`,
      { details: { path: jsonPath } },
    );
  };
  if (manifest === undefined) return;
  if (!Array.isArray(manifest)) bad('is not a list');
  for (const [g, group] of (manifest as unknown[]).entries()) {
    const { paths, weights } = (group ?? {}) as { paths?: unknown; weights?: unknown };
    if (!Array.isArray(paths) || !paths.every((p) => typeof p === 'string' && p.length > 0)) {
      bad(`has a group ${g} whose paths are not a list of file names`);
    }
    if (!Array.isArray(weights)) bad(`has a group ${g} without a list of weights`);
    for (const w of weights as unknown[]) {
      const { name, shape, dtype } = (w ?? {}) as { name?: unknown; shape?: unknown; dtype?: unknown };
      if (typeof name !== 'string') bad(`has a weight without a name in group ${g}`);
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
        bad(
          `gives weight '${String(name)}' the shape ${JSON.stringify(shape)}, not a list of non-negative integers`,
        );
      }
      if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES || dtype === 'string')) {
        bad(
          `gives weight '${String(name)}' the dtype ${JSON.stringify(dtype)} (valid: ${Object.keys(DTYPE_BYTES).join(', ')})`,
        );
      }
    }
  }
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, float16: 2 };

function weightBytes(spec: tf.io.WeightsManifestEntry): number {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.quantization !== undefined) {
    const q = spec.quantization.dtype;
    return count * (q === 'float16' || q === 'uint16' ? 2 : 1);
  }
  if (spec.dtype === 'string') {
    throw new CrpError(
      'unsupported-format',
      `string weights ('${spec.name}') cannot be loaded from disk here`,
    );
  }
  return count * (DTYPE_BYTES[spec.dtype] ?? 4);
}

function joinWeightData(data: tf.io.WeightData | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  if (Array.isArray(data)) return new Uint8Array(tf.io.CompositeArrayBuffer.join(data));
  return new Uint8Array(data);
}

async function saveModelArtifacts(
  dir: string,
  artifacts: tf.io.ModelArtifacts,
  shardSizeBytes: number | undefined,
): Promise<tf.io.SaveResult> {
  if (artifacts.modelTopology instanceof ArrayBuffer) {
    throw new CrpError(
      'invalid-argument',
      'binary model topologies (graph models) cannot be saved by fileSystem; valid: a LayersModel (JSON topology)',
    );
  }
  if (dir.toLowerCase().endsWith('.json')) {
    throw new CrpError(
      'invalid-argument',
      `save needs a directory, got the file name '${dir}'; the handler writes model.json and weights.bin into it`,
    );
  }
  const target = resolve(dir);
  const existing = await readdir(target).catch(() => undefined);
  const foreign = existing?.filter((name) => !isModelFile(name)) ?? [];
  if (foreign.length > 0) {
    throw new CrpError(
      'invalid-argument',
      `'${dir}' holds files that are not part of a saved model (${foreign.slice(0, 5).join(', ')}); save into a new or empty directory, or one written by fileSystem`,
    );
  }

  const bytes = joinWeightData(artifacts.weightData);
  const shards: { name: string; bytes: Uint8Array }[] = [];
  if (shardSizeBytes === undefined || bytes.byteLength <= shardSizeBytes) {
    shards.push({ name: 'weights.bin', bytes });
  } else {
    const n = Math.ceil(bytes.byteLength / shardSizeBytes);
    for (let i = 0; i < n; i++) {
      shards.push({
        name: `group1-shard${i + 1}of${n}.bin`,
        bytes: bytes.subarray(i * shardSizeBytes, Math.min(bytes.byteLength, (i + 1) * shardSizeBytes)),
      });
    }
  }
  const modelJSON: Record<string, unknown> = {
    modelTopology: artifacts.modelTopology,
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers`,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths: shards.map((s) => `./${s.name}`), weights: artifacts.weightSpecs ?? [] }],
  };
  for (const key of [
    'trainingConfig',
    'signature',
    'userDefinedMetadata',
    'modelInitializer',
    'initializerSignature',
  ] as const) {
    if (artifacts[key] !== undefined) modelJSON[key] = artifacts[key];
  }

  const suffix = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const temp = join(dirname(target), `.${basename(target)}.tmp-${suffix}`);
  try {
    await mkdir(temp, { recursive: true });
    for (const shard of shards) await writeFile(join(temp, shard.name), shard.bytes);
    await writeFile(join(temp, MODEL_FILE), JSON.stringify(modelJSON));
    if (existing === undefined) {
      await rename(temp, target);
    } else {
      const old = join(dirname(target), `.${basename(target)}.old-${suffix}`);
      await rename(target, old);
      try {
        await rename(temp, target);
      } catch (err) {
        await rename(old, target).catch(() => undefined);
        throw err;
      }
      await rm(old, { recursive: true, force: true });
    }
  } catch (err) {
    await rm(temp, { recursive: true, force: true }).catch(() => undefined);
    if (err instanceof CrpError) throw err;
    throw ioError('write', dir, `cannot save the model to '${dir}'`, err);
  }
  return {
    modelArtifactsInfo: {
      dateSaved: new Date(),
      modelTopologyType: 'JSON',
      modelTopologyBytes: JSON.stringify(artifacts.modelTopology).length,
      weightSpecsBytes: JSON.stringify(artifacts.weightSpecs ?? []).length,
      weightDataBytes: bytes.byteLength,
    },
  };
}

let routerRegistered = false;

/**
 * Lets `tfl.loadLayersModel('file://dir')` and `model.save('file://dir')` use {@link fileSystem}. Call it once
 * at start-up; calling it again does nothing. Do not call it when `@tensorflow/tfjs-node` is loaded: that
 * package registers its own `file://` handler, and TF.js refuses a URL that two handlers claim.
 */
export function registerFileSystemRouter(): void {
  if (routerRegistered) return;
  routerRegistered = true;
  // TF.js routers answer null for URLs that are not theirs (its type says IOHandler only)
  const router = (url: string | string[]): tf.io.IOHandler =>
    typeof url === 'string' && url.startsWith('file://')
      ? fileSystem(url)
      : (null as unknown as tf.io.IOHandler);
  tf.io.registerLoadRouter(router);
  tf.io.registerSaveRouter(router);
}
