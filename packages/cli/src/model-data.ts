import { CondAttribution } from '@crp/core';
import { compositeByName } from '@crp/lrp';
import type { Dataset } from '@crp/models';
import type * as tfl from '@tensorflow/tfjs-layers';
import { loadData } from './data.js';
import { openModel } from './load-model.js';

/** Options shared by the commands that explain a model over a data set. */
export const modelDataOptions = {
  model: { type: 'string' },
  data: { type: 'string' },
  samples: { type: 'string' },
  seed: { type: 'string', default: '0' },
  composite: { type: 'string', default: 'epsilon_plus_flat' },
} as const;

export const modelDataHelp = `  --model PATH        TF.js model (model.json or its directory) or a torchvision VGG (.safetensors)
  --data SPEC         'mnist' (bundled digits) or a folder with one sub-folder per class, resized to the model's input
  --samples N         mnist: images to use (default 500); folder: at most N per class
  --seed N            seed of the mnist sample (default 0)
  --composite NAME    LRP composite (default epsilon_plus_flat)`;

/** Loads the model, a CondAttribution over it and the data in the model's input shape. */
export async function openModelAndData(
  modelPath: string,
  dataSpec: string,
  options: { composite: string; samples?: number | undefined; seed?: number | undefined; holdOut?: number },
): Promise<{ model: tfl.LayersModel; crp: CondAttribution; data: Dataset; holdOut: Dataset | undefined }> {
  const composite = compositeByName(options.composite, { low: 0, high: 1 });
  const model = await openModel(modelPath);
  let crp: CondAttribution | undefined;
  try {
    crp = new CondAttribution(model, { composite });
    const { data, holdOut } = await loadData(dataSpec, {
      inputShape: crp.attributor.graph.inputShape,
      samples: options.samples,
      seed: options.seed,
      ...(options.holdOut === undefined ? {} : { holdOut: options.holdOut }),
    });
    return { model, crp, data, holdOut };
  } catch (err) {
    crp?.dispose();
    model.dispose();
    throw err;
  }
}
