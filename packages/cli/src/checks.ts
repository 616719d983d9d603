import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Region } from '@crp/attribution';
import { isCrpError } from '@crp/common';
import type { ModelGraph } from '@crp/lrp';
import { resolveTarget } from '@crp/study';
import { UsageError } from './usage-error.js';

// Checks of the command line against the model and the data, run after loading them and before any work, so
// that every mistake of the command line is a usage error (exit status 2) that says what is valid.

/**
 * The class index of `--target`: a class name (a sub-folder of `--data`; mnist: the digit) or an index below the
 * model's class count. The same rule as the study (`resolveTarget` of @crp/study).
 */
export function targetArg(value: string, graph: ModelGraph, classes: readonly string[] | undefined): number {
  const count = graph.node(graph.outputId).outputShape.at(-1);
  const names =
    classes ?? (typeof count === 'number' ? Array.from({ length: count }, (_, i) => String(i)) : []);
  try {
    const target = resolveTarget(value.trim(), names);
    if (typeof count === 'number' && target >= count) {
      throw new UsageError(`--target ${value}: the model has ${count} classes (0 to ${count - 1})`);
    }
    return target;
  } catch (err) {
    if (isCrpError(err, 'invalid-target')) throw new UsageError(`--target: ${err.message}`);
    throw err;
  }
}

/** Checks that every name of `--<option>` is a layer of the model (the message lists the valid names). */
export function checkLayers(option: string, names: readonly string[] | undefined, graph: ModelGraph): void {
  for (const name of names ?? []) {
    try {
      graph.node(name);
    } catch (err) {
      if (isCrpError(err, 'unknown-layer')) throw new UsageError(`--${option}: ${err.message}`);
      throw err;
    }
  }
}

/** Checks that a `--region` lies inside an input of `[height, width]`. */
export function checkRegion(spec: string, region: Region, size: readonly [number, number]): void {
  const [h, w] = size;
  if ('centerSquare' in region && region.centerSquare > Math.min(h, w)) {
    throw new UsageError(
      `--region ${spec} does not fit the ${h}x${w} input: the largest centre square is center:${Math.min(h, w)}`,
    );
  }
  if ('boxes' in region) {
    for (const b of region.boxes) {
      if (b.x < 0 || b.y < 0 || b.width < 1 || b.height < 1 || b.x + b.width > w || b.y + b.height > h) {
        throw new UsageError(
          `--region ${spec} does not fit the ${h}x${w} input: a box needs x + width <= ${w} and y + height <= ${h}`,
        );
      }
    }
  }
}

/** `[height, width]` of a model's input graph. */
export function graphInputSize(graph: ModelGraph): [number, number] | undefined {
  const [h, w] = graph.inputShape;
  return typeof h === 'number' && typeof w === 'number' ? [h, w] : undefined;
}

/**
 * The input size a model will have, known without loading its weights: `--input-size` (or 224) for a PyTorch
 * file, the input shape recorded in a TF.js model.json otherwise (undefined where it is not recorded).
 */
export function declaredInputSize(
  modelPath: string,
  inputSize: number | [number, number] | undefined,
): [number, number] | undefined {
  if (/\.(pth|pt|safetensors)$/i.test(modelPath)) {
    const s = inputSize ?? 224;
    return typeof s === 'number' ? [s, s] : s;
  }
  try {
    const file = statSync(modelPath).isDirectory() ? join(modelPath, 'model.json') : modelPath;
    const text = readFileSync(file, 'utf8');
    const m = /"batch_input_shape"\s*:\s*\[\s*null\s*,\s*(\d+)\s*,\s*(\d+)/.exec(text);
    return m === null ? undefined : [Number(m[1]), Number(m[2])];
  } catch {
    return undefined; // the loader says what is wrong with the file
  }
}
