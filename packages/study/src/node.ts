// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
// @crp/study/node: the study on files — a model file and an image folder in, a folder with report.html,
// study.json and pictures out, resumable. Browser bundles import '@crp/study' only.
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { CrpError, describeError, isCrpError, type ProgressCallback } from '@crp/common';
import { writeFileAtomic, writeJsonAtomic } from '@crp/common/node';
import { graphFromLayersModel, isTransformer } from '@crp/lrp';
import { disposeDataset, encodeTorchStateDict, torchStateDictOf } from '@crp/models';
import { encodeOnnxFile, imageFolder, listImageFolder, loadModel, saveModel } from '@crp/models/node';
import { toRasterImage } from '@crp/vis';
import { readPng, writePng, writeReport } from '@crp/vis/node';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { resolveTarget, type StudyOptions } from './options.js';
import { studyReport } from './report.js';
import type { StudyStore } from './store.js';
import type { StudyResult } from './result.js';
import { runStudy } from './study.js';

/**
 * A {@link StudyStore} in a folder: parts as `parts/<name>.json`, pictures as PNG under their name (e.g.
 * `references/features.25.png`), the fine-tuned model as `model/` (model.json + weights) and, for a model read
 * from an `.onnx` (`options.onnxSource`), also as `model.onnx`: the source graph with the fine-tuned weights
 * (`encodeOnnxFile` of @crp/models/node, with the source's external data if it has any; encoded before `model/` is saved, so a graph that cannot hold the model leaves
 * neither); with `stateDict` (a torchvision VGG or ResNet read from a `.pth`, `.pt` or `.safetensors`), also as
 * `state_dict.pth`, which `torch.load` + `load_state_dict` of the same architecture accept (encoded before `model/`
 * is saved too). Every file is written atomically, so a killed study leaves whole files only.
 */
export function fileStudyStore(
  dir: string,
  options: {
    /** The `.onnx` file the model was imported from. */
    onnxSource?: string;
    /** Its input size, when the file's is dynamic. */
    inputSize?: number | [number, number];
    /** Also write the model as a PyTorch `state_dict.pth` (PyTorch's layer names, as the VGG and ResNet
     * importers give them). */
    stateDict?: boolean;
  } = {},
): StudyStore {
  const partFile = (name: string) => join(dir, 'parts', `${name}.json`);
  return {
    async readPart(name) {
      let text: string;
      try {
        text = await readFile(partFile(name), 'utf8');
      } catch {
        return undefined;
      }
      try {
        return JSON.parse(text) as { key: string; value: unknown };
      } catch {
        // a file of another tool or version: computed again
        return undefined;
      }
    },
    writePart: (name, part) => writeJsonAtomic(partFile(name), part),
    async writeImage(name, image) {
      await writePng(join(dir, name), image);
      return name;
    },
    async readImage(name) {
      try {
        return await readPng(join(dir, name));
      } catch {
        return undefined;
      }
    },
    async saveModel(model) {
      // back to the user's format: a folded-BN .onnx cannot become a torchvision state dict, but the same graph
      // can. Encoded first: a graph that cannot hold the model is refused before `model/` is written
      const onnx =
        options.onnxSource === undefined
          ? undefined
          : await encodeOnnxFile(
              model,
              options.onnxSource,
              options.inputSize === undefined ? {} : { inputSize: options.inputSize },
            );
      const stateDict =
        options.stateDict === true ? encodeTorchStateDict(torchStateDictOf(model)) : undefined;
      await saveModel(model, join(dir, 'model'));
      if (onnx !== undefined) await writeFileAtomic(join(dir, 'model.onnx'), onnx);
      if (stateDict !== undefined) await writeFileAtomic(join(dir, 'state_dict.pth'), stateDict);
    },
    async loadModel() {
      try {
        return await loadModel(join(dir, 'model'));
      } catch {
        return undefined;
      }
    },
  };
}

/** Whether a model path names an `.onnx` file (as `loadModel` tells it apart). */
const isOnnx = (path: string) => path.toLowerCase().endsWith('.onnx');

/** Whether `loadModel` read this model from a PyTorch file (neither an `.onnx` nor a TF.js `model.json` or its
 * folder) and it is a CNN, whose layers a torchvision state dict holds (a ViT's are not written back). */
function isTorchCnn(path: string, model: LayersModel): boolean {
  if (isOnnx(path) || path.toLowerCase().endsWith('.json')) return false;
  if (statSync(path, { throwIfNoEntry: false })?.isFile() !== true) return false;
  const graph = graphFromLayersModel(model);
  try {
    return !isTransformer(graph);
  } finally {
    graph.dispose();
  }
}

/** Options of {@link studyFiles}: the study's options, plus where the model and images are and how to read them. */
export interface StudyFilesOptions extends StudyOptions {
  /** The model: a torchvision VGG, ResNet (resnet18 ... 152, wide and ResNeXt variants, or of any widths) or
   * ViT saved by torch.save (`.pth`/`.pt`: state dict or whole model) or as `.safetensors`; any CNN as `.onnx`
   * (`torch.onnx.export`, tf2onnx; layers keep the PyTorch module names the exporter kept); or a TF.js model.json
   * (or its folder). */
  model: string;
  /** A folder with one sub-folder of images per class (class names sorted, as torchvision's ImageFolder). */
  data: string;
  /** The output folder (created): report.html, study.json, pictures, parts of a resumable run. */
  out: string;
  /** Input size of an imported PyTorch model (one side or [height, width]); images of another size are resized. */
  inputSize?: number | [number, number];
  /** Attention heads of an imported ViT that is none of torchvision's configurations (not stored in the weights). */
  numHeads?: number;
  /** Per-channel normalisation after scaling to [0, 1], e.g. `IMAGENET`; default none. */
  mean?: readonly number[];
  std?: readonly number[];
  /** At most this many images per class are read (the first in name order). */
  limitPerClass?: number;
  /** Start afresh: delete the stored parts of an earlier run first. */
  restart?: boolean;
  onProgress?: ProgressCallback;
  log?: (line: string) => void;
}

/** What {@link studyFiles} wrote. */
export interface StudyFilesResult {
  result: StudyResult;
  report: string;
  json: string;
}

/** A short fingerprint of files (path, size, modification time): enough to notice that a file changed. */
async function fileIdentity(paths: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const p of paths) {
    const s = await stat(p);
    hash.update(`${p}\0${s.size}\0${s.mtimeMs}\n`);
  }
  return hash.digest('hex').slice(0, 16);
}

/** What can be checked without the model (the folder, the target class and its images); then the output folder
 * (emptied of stored parts on `restart`). Returns the identity of the model and image files. */
async function prepare(options: StudyFilesOptions): Promise<string> {
  const listing = await listImageFolder(options.data, {
    allowEmpty: true,
    ...(options.limitPerClass === undefined ? {} : { limitPerClass: options.limitPerClass }),
  });
  const target = resolveTarget(options.target, listing.classes);
  if (!listing.labels.includes(target)) {
    throw new CrpError(
      'empty-data',
      `the target class '${listing.classes[target]}' has no images in '${join(options.data, listing.classes[target]!)}'`,
      { details: { path: join(options.data, listing.classes[target]!) } },
    );
  }
  if (options.restart === true) await rm(join(options.out, 'parts'), { recursive: true, force: true });
  await mkdir(options.out, { recursive: true });
  const identity = await fileIdentity([options.model, ...listing.files]).catch((err: unknown) => {
    throw new CrpError(
      isCrpError(err) ? err.code : 'not-found',
      `cannot read '${options.model}': ${describeError(err)}`,
      {
        cause: err,
        details: { path: options.model },
      },
    );
  });
  return identity;
}

/** The image folder at the model's input size and channels (unreadable files skipped and logged). */
async function readImages(
  model: LayersModel,
  options: StudyFilesOptions,
  log: (line: string) => void,
): Promise<Awaited<ReturnType<typeof imageFolder>>> {
  const input = model.inputs[0]!.shape;
  const [h, w, c] = [input[1], input[2], input[3]];
  if (typeof h !== 'number' || typeof w !== 'number' || typeof c !== 'number') {
    throw new CrpError(
      'invalid-shape',
      `the model's input shape [${input.join(', ')}] is open; give a model with a fixed input size`,
    );
  }
  const normalise = options.mean === undefined ? {} : { mean: options.mean, std: options.std ?? [1, 1, 1] };
  const data = await imageFolder(options.data, {
    inputSize: [h, w],
    channels: c === 1 ? 1 : 3,
    ...normalise,
    allowEmpty: true,
    unreadable: 'skip',
    ...(options.limitPerClass === undefined ? {} : { limitPerClass: options.limitPerClass }),
    ...(options.onProgress === undefined
      ? {}
      : { onProgress: (p) => options.onProgress!({ ...p, phase: 'images' }) }),
  });
  for (const s of data.skipped) log(`skipped ${s.path}: ${s.reason}`);
  return data;
}

/** Shows pictures as they were on disk: undoes the normalisation `mean`/`std` (if any), clipped to [0, 1]. */
function unnormalised(mean: readonly number[] | undefined, std: readonly number[] = [1, 1, 1]) {
  return (im: tf.Tensor3D) => {
    const pixels = tf.tidy(() =>
      mean === undefined
        ? tf.clipByValue(im, 0, 1)
        : tf.clipByValue(tf.add(tf.mul(im, [...std]), [...mean]), 0, 1),
    );
    const raster = toRasterImage(
      { shape: pixels.shape, data: pixels.dataSync() as Float32Array },
      { vmin: 0, vmax: 1 },
    );
    pixels.dispose();
    return raster;
  };
}

/**
 * The concept study on files, as `crp study` runs it: reads the image folder (class names from the
 * sub-folders; unreadable files skipped and reported, grey and RGBA images converted), imports the model,
 * runs {@link runStudy}, and writes `out/report.html` (self-contained), `out/study.json` (everything in the report
 * as data) and the pictures. Checks what it can before the model loads (the folder, the target class and its
 * samples). A second run with the same inputs takes the finished parts from `out/parts/`.
 *
 * ```ts
 * await studyFiles({ model: 'state_dict.pth', data: 'patches/', target: 'mitosis', inputSize: 128, ...IMAGENET,
 *   region: { centerSquare: 100 }, out: 'study/' });
 * ```
 */
export async function studyFiles(options: StudyFilesOptions): Promise<StudyFilesResult> {
  const log = options.log ?? (() => {});
  const identity = await prepare(options);
  log(`model: ${options.model}`);
  const t0 = performance.now();
  const model: LayersModel = await loadModel(options.model, {
    ...(options.inputSize === undefined ? {} : { inputSize: options.inputSize }),
    ...(options.numHeads === undefined ? {} : { numHeads: options.numHeads }),
  });
  log(`model loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  let current = model;
  let data: Awaited<ReturnType<typeof imageFolder>> | undefined;
  try {
    data = await readImages(model, options, log);
    const run = await runStudy(model, data, options, {
      store: fileStudyStore(options.out, {
        ...(isOnnx(options.model) ? { onnxSource: options.model } : {}),
        ...(isTorchCnn(options.model, model) ? { stateDict: true } : {}),
        ...(options.inputSize === undefined ? {} : { inputSize: options.inputSize }),
      }),
      identity: JSON.stringify({
        identity,
        inputSize: options.inputSize,
        numHeads: options.numHeads,
        mean: options.mean,
        std: options.std,
      }),
      toImage: unnormalised(options.mean, options.std),
      modelName: basename(options.model),
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
      log,
    });
    current = run.model;
    const report = join(options.out, 'report.html');
    const json = join(options.out, 'study.json');
    await writeJsonAtomic(json, run.result);
    await writeReport(report, studyReport(run.result, run.images));
    return { result: run.result, report, json };
  } finally {
    if (data !== undefined) disposeDataset(data);
    if (current !== model) current.dispose();
    model.dispose();
  }
}
