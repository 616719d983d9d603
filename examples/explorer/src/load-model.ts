/**
 * Loading a TF.js layers model (model.json + binary weight files) or any CNN as ONNX (`.onnx`, with its external
 * data files if it has them) from a URL or from files the user picked, with messages that say what is wrong and
 * what to do instead of TF.js's own.
 */
import { CrpError, describeError } from '@crp/common';
import { transformerLayers } from '@crp/lrp';
import { importOnnx, parseOnnxModel } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { GuardedLoad } from './guarded-load.js';

/**
 * Makes sure @crp/lrp's transformer layers (ClassToken, PositionEmbedding, MatMul, SelectToken, which a ViT's
 * model.json names) are registered with tf.serialization before a model is built: their module registers them when
 * it loads, and using it here keeps the bundler from leaving it out.
 */
function registerTransformerLayers(): void {
  if (typeof transformerLayers.classToken !== 'function') {
    throw new CrpError('unsupported-model', 'the transformer layers of @crp/lrp are missing from this build');
  }
}

/** A loaded model and where it came from. */
export interface LoadedModel {
  model: tfl.LayersModel;
  /** Name shown in the page (file or URL). */
  name: string;
}

interface ModelJson {
  format?: string;
  modelTopology?: unknown;
  weightsManifest?: { paths?: string[] }[];
}

/** Checks the parsed model.json: a layers model whose weight files are named in its manifest. */
function checkModelJson(json: unknown, name: string): ModelJson {
  const m = json as ModelJson | null;
  if (typeof m !== 'object' || m === null || m.modelTopology === undefined) {
    throw new CrpError(
      'unsupported-format',
      `${name} is JSON but not a TF.js model (no modelTopology); pick the model.json that tf.LayersModel.save() or the TF.js converter wrote`,
    );
  }
  if (m.format === 'graph-model') {
    throw new CrpError(
      'unsupported-format',
      `${name} is a TF.js graph model (a converted SavedModel or frozen graph): it has no layers the explorer could walk backwards; convert a Keras model with 'tensorflowjs_converter --input_format keras' to get a layers model`,
    );
  }
  return m;
}

function weightFilesOf(json: ModelJson): string[] {
  return (json.weightsManifest ?? []).flatMap((g) => g.paths ?? []);
}

/** Imports an `.onnx` file picked by the user; the other picked files are its external data. */
async function loadOnnxFromFiles(onnx: File, files: readonly File[]): Promise<LoadedModel> {
  const data = new Map<string, Uint8Array>();
  for (const f of files) if (f !== onnx) data.set(f.name, new Uint8Array(await f.arrayBuffer()));
  const model = importOnnx(new Uint8Array(await onnx.arrayBuffer()), {
    // a location is relative to the model file; in a browser only the file name can be matched
    externalData: (location) => data.get(location.split('/').pop()!),
  });
  return { model, name: onnx.name };
}

/** Loads a model from files picked by the user: one model.json and the weight files it lists, or one `.onnx`
 * (and its external data files). */
export async function loadModelFromFiles(files: readonly File[]): Promise<LoadedModel> {
  const onnx = files.filter((f) => f.name.toLowerCase().endsWith('.onnx'));
  if (onnx.length > 1) {
    throw new CrpError(
      'invalid-argument',
      `${onnx.length} .onnx files selected (${onnx.map((f) => f.name).join(', ')}); select one model`,
    );
  }
  if (onnx.length === 1) return loadOnnxFromFiles(onnx[0]!, files);
  const jsons = files.filter((f) => f.name.toLowerCase().endsWith('.json'));
  if (jsons.length !== 1) {
    throw new CrpError(
      'invalid-argument',
      jsons.length === 0
        ? `no model.json among the ${files.length} selected file(s) (${files.map((f) => f.name).join(', ')}); select model.json together with its weight files (*.bin)`
        : `${jsons.length} JSON files selected (${jsons.map((f) => f.name).join(', ')}); select one model.json and its weight files`,
    );
  }
  const jsonFile = jsons[0]!;
  let parsed: unknown;
  try {
    parsed = JSON.parse(await jsonFile.text());
  } catch (err) {
    throw new CrpError('corrupt-file', `${jsonFile.name} is not valid JSON: ${describeError(err)}`, {
      cause: err,
    });
  }
  const json = checkModelJson(parsed, jsonFile.name);
  const names = new Set(files.map((f) => f.name));
  const missing = weightFilesOf(json)
    .map((p) => p.split('/').pop()!)
    .filter((p) => !names.has(p));
  if (missing.length > 0) {
    throw new CrpError(
      'not-found',
      `${jsonFile.name} lists the weight file${missing.length > 1 ? 's' : ''} ${missing.join(', ')}, which ${missing.length > 1 ? 'were' : 'was'} not selected: select model.json together with all its weight files (hold Ctrl or Shift in the file dialog)`,
    );
  }
  const weights = files.filter((f) => f !== jsonFile && weightFilesOf(json).some((p) => p.endsWith(f.name)));
  try {
    registerTransformerLayers();
    const model = await tfl.loadLayersModel(tf.io.browserFiles([jsonFile, ...weights]));
    return { model, name: jsonFile.name };
  } catch (err) {
    throw new CrpError(
      'corrupt-file',
      `the model in ${jsonFile.name} could not be built: ${describeError(err)}`,
      {
        cause: err,
      },
    );
  }
}

/** Loads a model from the URL of its model.json (weight files are fetched from beside it) or of an `.onnx` file
 * (external data files too). Each file is fetched once, through `load`: a newer load or a server that keeps it
 * waiting past its time limit stops it, before anything is built. */
export async function loadModelFromUrl(url: string, load: GuardedLoad): Promise<LoadedModel> {
  let response: Response;
  try {
    response = await load.fetch(url);
  } catch (err) {
    if (load.stopReason() !== undefined) throw err;
    throw new CrpError('unreachable', `${url} could not be fetched: ${describeError(err)}`, { cause: err });
  }
  if (!response.ok) {
    throw new CrpError(
      'not-found',
      `${url} could not be loaded: HTTP ${response.status} ${response.statusText}`,
    );
  }
  if (new URL(url, location.href).pathname.toLowerCase().endsWith('.onnx')) {
    const bytes = new Uint8Array(await load.step(response.arrayBuffer()));
    const data = new Map<string, Uint8Array>();
    // external data: fetched from beside the model before the (synchronous) import
    for (const loc of externalLocations(bytes)) {
      const r = await load.fetch(new URL(loc, new URL(url, location.href)).href).catch(() => undefined);
      // a missing file is named by the import; a stopped load is not
      load.check();
      if (r?.ok) data.set(loc, new Uint8Array(await load.step(r.arrayBuffer())));
    }
    return {
      model: importOnnx(bytes, { externalData: (loc) => data.get(loc) }),
      name: url.split('/').pop()!,
    };
  }
  let parsed: unknown;
  try {
    parsed = await load.step(response.json());
  } catch (err) {
    if (load.stopReason() !== undefined) throw err;
    throw new CrpError('corrupt-file', `${url} is not JSON: give the URL of a model.json`, { cause: err });
  }
  const json = checkModelJson(parsed, url);
  // the weight files, fetched through `load` in the manifest's order; model.json is built from the copy read above
  const base = new URL(url, location.href);
  const weights: ArrayBuffer[] = [];
  for (const path of weightFilesOf(json)) {
    const weightUrl = new URL(path, base).href;
    const weight = await load.fetch(weightUrl).catch(() => undefined);
    load.check();
    if (weight === undefined || !weight.ok) {
      throw new CrpError(
        'not-found',
        `the weight file ${path} that ${url} lists could not be loaded from ${weightUrl}${weight ? ` (HTTP ${weight.status})` : ''}: put the weight files beside model.json`,
      );
    }
    weights.push(await load.step(weight.arrayBuffer()));
  }
  try {
    registerTransformerLayers();
    // built from what was fetched: a load stopped before this point leaves no tensor
    const artifacts = tf.io.getModelArtifactsForJSONSync(
      json as tf.io.ModelJSON,
      tf.io.getWeightSpecs((json.weightsManifest ?? []) as tf.io.WeightsManifestConfig),
      weights,
    );
    const model = await tfl.loadLayersModel(tf.io.fromMemory(artifacts));
    return { model, name: url.split('/').slice(-2).join('/') };
  } catch (err) {
    throw new CrpError('corrupt-file', `the model at ${url} could not be built: ${describeError(err)}`, {
      cause: err,
    });
  }
}

/** The external data files an ONNX model names (none for most models). */
function externalLocations(bytes: Uint8Array): string[] {
  const model = parseOnnxModel(bytes);
  return [
    ...new Set(model.graph.initializers.flatMap((t) => (t.external?.location ? [t.external.location] : []))),
  ];
}
