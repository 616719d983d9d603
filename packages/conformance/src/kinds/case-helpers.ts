import type { Condition } from '@crp/core';
import type * as lrp from '@crp/lrp';
import { type OnnxModel, parseOnnxModel } from '@crp/models';
import { type DeviationLog, deviation } from '../compare.js';
import { joinPath } from '../reference-files.js';
import type { CaseRef } from '../types.js';
import { builtInComposite } from './lrp.js';

/** What the kinds that run models from several sources share: reading a case's model file, naming its composite,
 * filling stripped ONNX initializers from a seeded formula, and comparing a conditioned layer's relevance. */

/** The bytes of `models/<model><suffix>` of the case's reference directory; a missing file is an error. */
export async function readModelBytes(ref: CaseRef, model: string, suffix = '.onnx'): Promise<Uint8Array> {
  const file = joinPath(ref.dir, `models/${model}${suffix}`);
  const bytes = await ref.files.readBytes(file);
  if (bytes === undefined) throw new Error(`${file} does not exist`);
  return bytes;
}

/** The built-in composite of a zennit composite's Python expression; one without a counterpart is an error. */
export function compositeOf(python: string): lrp.Composite {
  const composite = builtInComposite(python);
  if (composite === undefined) throw new Error(`composite '${python}' has no counterpart`);
  return composite;
}

/** A state dict computed from a seeded formula (`@crp/testing`): its names, shapes and float32 values. */
interface FormulaWeights {
  has(name: string): boolean;
  entry(name: string): { shape: readonly number[] };
  float32(name: string): Float32Array;
}

/**
 * Fills the initializers of an ONNX graph whose weights were stripped (big models are committed without them)
 * from the formula's state dict, matched by name; initializers the formula does not know (shapes of Reshape,
 * scalars) keep their data. A shape that differs from the formula's is an error naming both.
 */
export function fillInitializers(onnx: OnnxModel, weights: FormulaWeights, file: string): OnnxModel {
  for (const t of onnx.graph.initializers) {
    if (!weights.has(t.name)) continue;
    const shape = weights.entry(t.name).shape;
    if (shape.join() !== t.dims.join())
      throw new Error(`${file}: '${t.name}' is [${t.dims}], the formula's [${shape}]`);
    const values = weights.float32(t.name);
    t.rawData = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    t.floatData = [];
  }
  return onnx;
}

/** Parses ONNX bytes and fills its stripped initializers from the formula ({@link fillInitializers}). */
export function parseWithFormula(bytes: Uint8Array, weights: FormulaWeights, file: string): OnnxModel {
  return fillInitializers(parseOnnxModel(bytes), weights, file);
}

/** The layers some condition masks (every key but the target `y`). */
export function conditionedLayers(conditions: readonly Condition[]): Set<string> {
  return new Set(conditions.flatMap((cond) => Object.keys(cond).filter((k) => k !== 'y')));
}

/**
 * Logs the deviation of a recorded relevance (`ours` and `golden`: rows of `conditions`, channels on the last axis).
 * zennit-crp (torch 1.13) records a conditioned layer before its own mask, so there only the condition's channels
 * are comparable (the reference README says so); elsewhere the whole tensor is.
 */
export function logConditionedRelevance(
  log: DeviationLog,
  name: string,
  layer: string,
  conditions: readonly Condition[],
  channels: number,
  ours: ArrayLike<number>,
  golden: ArrayLike<number>,
): void {
  if (!conditionedLayers(conditions).has(layer)) {
    log.add(name, deviation(ours, golden));
    return;
  }
  const perRow = golden.length / conditions.length;
  const keep = (i: number) =>
    (conditions[Math.floor(i / perRow)]![layer] as number[] | undefined)?.includes(i % channels) === true;
  const pick = (a: ArrayLike<number>) => Array.from(a).filter((_, i) => keep(i));
  log.add(`${name}[condition channels]`, deviation(pick(ours), pick(golden)));
}
