import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { readJson } from './discover.js';
import { joinPath, type ReferenceFiles } from './reference-files.js';

interface LayerSpec {
  name: string;
  type: 'conv2d' | 'batchnorm' | 'relu' | 'maxpool2d' | 'avgpool2d' | 'flatten' | 'dense';
  filters?: number;
  units?: number;
  kernelSize?: [number, number];
  strides?: number;
  padding?: 'same' | 'valid';
  kernelShape?: number[];
  kernel?: number[];
  bias?: number[];
  gamma?: number[];
  beta?: number[];
  movingMean?: number[];
  movingVariance?: number[];
  epsilon?: number;
  poolSize?: number;
}

export interface ReferenceModelFile {
  name: string;
  inputShape: [number, number, number];
  numClasses: number;
  layers: LayerSpec[];
}

/** Builds the TF.js model of a reference model file (layer names as the torch modules). The caller owns
 * the model (`model.dispose()`). */
export function buildReferenceModel(spec: ReferenceModelFile): tfl.Sequential {
  const model = tfl.sequential({ name: spec.name.replace(/[^A-Za-z0-9_]/g, '_') });
  spec.layers.forEach((l, i) => {
    const first = i === 0 ? { inputShape: spec.inputShape } : {};
    switch (l.type) {
      case 'conv2d':
        model.add(
          tfl.layers.conv2d({
            ...first,
            name: l.name,
            filters: l.kernelShape![3]!,
            kernelSize: l.kernelShape!.slice(0, 2) as [number, number],
            strides: l.strides ?? 1,
            padding: l.padding ?? 'same',
            useBias: l.bias !== undefined,
          }),
        );
        break;
      case 'batchnorm':
        model.add(
          tfl.layers.batchNormalization({ ...first, name: l.name, epsilon: l.epsilon ?? 1e-5, axis: -1 }),
        );
        break;
      case 'relu':
        model.add(tfl.layers.reLU({ ...first, name: l.name }));
        break;
      case 'maxpool2d':
        model.add(
          tfl.layers.maxPooling2d({
            ...first,
            name: l.name,
            poolSize: l.poolSize ?? 2,
            strides: l.strides ?? 2,
          }),
        );
        break;
      case 'avgpool2d':
        model.add(
          tfl.layers.averagePooling2d({
            ...first,
            name: l.name,
            poolSize: l.poolSize ?? 2,
            strides: l.strides ?? 2,
          }),
        );
        break;
      case 'flatten':
        model.add(tfl.layers.flatten({ ...first, name: l.name }));
        break;
      case 'dense':
        model.add(
          tfl.layers.dense({
            ...first,
            name: l.name,
            units: l.kernelShape![1]!,
            useBias: l.bias !== undefined,
          }),
        );
        break;
      default:
        throw new Error(`reference model layer type '${String((l as LayerSpec).type)}' is not known`);
    }
  });
  // set the weights
  spec.layers.forEach((l, i) => {
    const layer = model.layers[i]!;
    let weights: tf.Tensor[] = [];
    if (l.type === 'conv2d' || l.type === 'dense') {
      weights = [tf.tensor(l.kernel!, l.kernelShape!)];
      if (l.bias !== undefined) weights.push(tf.tensor1d(l.bias));
    } else if (l.type === 'batchnorm') {
      weights = [l.gamma!, l.beta!, l.movingMean!, l.movingVariance!].map((a) => tf.tensor1d(a));
    }
    if (weights.length > 0) {
      layer.setWeights(weights);
      for (const w of weights) w.dispose();
    }
  });
  return model;
}

const cache = new Map<string, ReferenceModelFile>();

/** Reads `<dir>/models/<name>.json` (cached). */
export async function readReferenceModel(
  files: ReferenceFiles,
  dir: string,
  name: string,
): Promise<ReferenceModelFile> {
  const file = joinPath(dir, `models/${name}.json`);
  let spec = cache.get(file);
  if (spec === undefined) {
    spec = (await readJson(files, file, false)) as ReferenceModelFile;
    cache.set(file, spec);
  }
  return spec;
}
