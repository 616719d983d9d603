import * as lrp from '@crp/lrp';
import * as tf from '@tensorflow/tfjs-core';
import { DeviationLog, deviation, type GoldenTensor, goldenData } from '../compare.js';
import { discoverCaseFiles } from '../discover.js';
import { buildReferenceModel, readReferenceModel } from '../reference-model.js';
import type { CaseOutcome, CaseRef, KindRunner } from '../types.js';

export interface RuleEntry {
  rule: string;
  params?: Record<string, number>;
}

interface LrpCase {
  id: string;
  model: string;
  composite: string;
  compositePython: string;
  canonizers: string[];
  input: GoldenTensor;
  targets: number[];
  logits: GoldenTensor;
  logitsDuringAttribution: GoldenTensor;
  relevance: Record<string, GoldenTensor>;
  rules: Record<string, RuleEntry>;
}

/** The toolkit's rule for a reference `rules` entry. */
export function ruleFromEntry(entry: RuleEntry): lrp.Rule {
  const p = entry.params ?? {};
  switch (entry.rule) {
    case 'Epsilon':
      return lrp.epsilon(p.epsilon);
    case 'ZPlus':
      return lrp.zPlus(p.stabilizer);
    case 'AlphaBeta':
      return lrp.alphaBeta(p.alpha, p.beta, p.stabilizer);
    case 'Gamma':
      return lrp.gamma(p.gamma, p.stabilizer);
    case 'Flat':
      return lrp.flat(p.stabilizer);
    case 'WSquare':
      return lrp.wSquare(p.stabilizer);
    case 'ZBox':
      return lrp.zBox(p.low!, p.high!, p.stabilizer);
    case 'Norm':
      return lrp.norm(p.stabilizer);
    case 'Pass':
      return lrp.pass();
    case 'gradient':
      return lrp.gradient();
    default:
      throw new Error(`reference rule '${entry.rule}' has no counterpart`);
  }
}

/** Keyword arguments of a Python call such as `EpsilonGammaBox(low=-3.0, high=3.0, canonizers=[...])`:
 * the numeric ones. */
export function numericKwargs(python: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of python.matchAll(/(\w+)\s*=\s*(-?[\d.]+(?:e-?\d+)?)/g)) out[m[1]!] = Number(m[2]);
  return out;
}

/** The built-in composite a reference case names (with its numeric arguments), or undefined for plain-rule
 * cases. */
export function builtInComposite(python: string): lrp.Composite | undefined {
  const name = python.split('(')[0]!.trim();
  const k = numericKwargs(python);
  const options: lrp.EpsilonOptions = {};
  if (k.epsilon !== undefined) options.epsilon = k.epsilon;
  if (k.stabilizer !== undefined) options.stabilizer = k.stabilizer;
  switch (name) {
    case 'EpsilonPlus':
      return lrp.epsilonPlus(options);
    case 'EpsilonPlusFlat':
      return lrp.epsilonPlusFlat(options);
    case 'EpsilonAlpha2Beta1':
      return lrp.epsilonAlpha2Beta1(options);
    case 'EpsilonAlpha2Beta1Flat':
      return lrp.epsilonAlpha2Beta1Flat(options);
    case 'EpsilonGammaBox': {
      if (k.low === undefined || k.high === undefined)
        throw new Error(`EpsilonGammaBox without low/high: ${python}`);
      return lrp.epsilonGammaBox({
        ...options,
        low: k.low,
        high: k.high,
        ...(k.gamma === undefined ? {} : { gamma: k.gamma }),
      });
    }
    default:
      return undefined;
  }
}

export function canonizersOf(names: readonly string[]): lrp.Canonizer[] {
  return names.map((n) => {
    // zennit 0.5.1 keeps the batch norm's eps after merging; the golden values include that factor
    if (n === 'SequentialMergeBatchNorm') return lrp.mergeBatchNorm({ keepEpsilon: true });
    throw new Error(`reference canonizer '${n}' has no counterpart`);
  });
}

/** Checks that the composite assigned the rules the reference lists (name and parameters). */
export function checkRuleAssignment(
  attributor: lrp.Attributor,
  expected: Record<string, RuleEntry>,
  log: DeviationLog,
): void {
  for (const [layer, entry] of Object.entries(expected)) {
    const rule = attributor.ruleOf(layer);
    if (rule.name !== entry.rule) {
      log.fail(`rule at ${layer}: ours ${rule.name}, reference ${entry.rule}`);
      continue;
    }
    for (const [k, v] of Object.entries(entry.params ?? {})) {
      if (rule.params[k] !== v)
        log.fail(`rule ${rule.name} at ${layer}: ${k} = ${rule.params[k]}, reference ${v}`);
    }
  }
}

export function tensorOf(g: GoldenTensor): tf.Tensor {
  return tf.tensor(goldenData(g), g.shape);
}

/** The part of a golden LRP case that any model source shares: attribute `input` for the case's targets, recording
 * every layer the case has relevance for, and log the logits and each relevance against the golden values. */
export async function compareRelevances(
  attributor: lrp.Attributor,
  input: tf.Tensor,
  c: Pick<LrpCase, 'targets' | 'logitsDuringAttribution' | 'relevance'>,
  log: DeviationLog,
): Promise<void> {
  const layers = Object.keys(c.relevance).filter((k) => k !== 'input');
  const result = attributor.attribute(input, { target: c.targets, recordLayers: layers });
  try {
    log.add('logits', deviation(await result.prediction.data(), goldenData(c.logitsDuringAttribution)));
    log.add('input', deviation(await result.relevance.data(), goldenData(c.relevance.input!, c.relevance)));
    for (const layer of layers) {
      log.add(
        layer,
        deviation(await result.relevances[layer]!.data(), goldenData(c.relevance[layer]!, c.relevance)),
      );
    }
  } finally {
    lrp.disposeResult(result);
  }
}

async function runLrpCase(ref: CaseRef): Promise<CaseOutcome> {
  const c = (await ref.load()) as LrpCase;
  const model = buildReferenceModel(await readReferenceModel(ref.files, ref.dir, c.model));
  const log = new DeviationLog();
  const builtIn = builtInComposite(c.compositePython);
  const composite =
    builtIn ??
    lrp.nameMapComposite(
      Object.fromEntries(Object.entries(c.rules).map(([layer, e]) => [layer, ruleFromEntry(e)])),
    );
  const attributor = new lrp.Attributor(model, { composite, canonizers: canonizersOf(c.canonizers) });
  const input = tensorOf(c.input);
  try {
    if (builtIn) checkRuleAssignment(attributor, c.rules, log);
    await compareRelevances(attributor, input, c, log);
  } finally {
    input.dispose();
    attributor.dispose();
    model.dispose();
  }
  return log.outcome(c.id, 'lrp');
}

export const lrpRunner: KindRunner = {
  kind: 'lrp',
  discover: (dir, files) => discoverCaseFiles(dir, files, 'lrp'),
  run: runLrpCase,
};
