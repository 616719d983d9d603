import { CrpError, listNames, type ProgressCallback, progressTracker } from '@crp/common';
import { Attributor, type AttributorOptions, type ForwardPass } from '@crp/lrp';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { Concept } from './concepts/concept.js';
import { defaultConcept } from './concepts/default-concept.js';
import {
  type Condition,
  type ConditionGroup,
  checkConditionList,
  groupConditions,
  OUTPUT_KEY,
  type PlannedRow,
  planGroupRows,
} from './conditions.js';

export interface CondRunOptions {
  /** Layers whose output relevance is returned (`relevances`), per row. */
  recordLayers?: readonly string[];
  /** Start the backward pass at this layer's output with its activation (the `y` entries are ignored). */
  startLayer?: string;
  /**
   * Initial relevance: by default the prediction (logits, or the start layer's activation) itself; a function
   * of it (e.g. `tf.abs`); a number filling its shape; or a tensor of its shape (batch 1 or one row per image).
   * Rows of conditions with `y` then keep only their `y` entries.
   */
  initRelevance?: tf.Tensor | number | ((prediction: tf.Tensor) => tf.Tensor);
  /** The concept of each conditioned layer; default {@link defaultConcept}: the heads of an attention product
   * (HeadConcept), channels (ChannelConcept) everywhere else. */
  maskMap?: Readonly<Record<string, Concept>> | ((layer: string) => Concept);
  /** Condition rows per backward pass; default chosen from the model's size (memory, e.g. wasm's 4 GiB heap). */
  chunkSize?: number;
  /** Compute the input heatmap (default true). With false the backward pass stops at the lowest recorded
   * layer, which is much faster for decompositions. */
  heatmap?: boolean;
  /** Layers whose activation (output) is returned per row. */
  recordActivations?: readonly string[];
  /**
   * zennit-crp's `exclude_parallel` (default true): the backward pass runs piecewise from one conditioned
   * layer to the next, so relevance reaches the layers below a conditioned layer only through it, never
   * around it through a parallel branch (the skip connection of a residual block). With false, the
   * relevance arriving at a conditioned layer is masked in one full backward pass, and relevance that
   * bypasses the layer still flows on. Both are the same on models without branches. With true, the
   * conditioned layers of one condition must lie on one path (each below the previous); a recorded layer that
   * only parallel branches reach gets zero relevance.
   */
  excludeParallel?: boolean;
  /** Called after each chunk with the condition rows done out of all rows (`unit: 'rows'`). */
  onProgress?: ProgressCallback;
}

/** Result of a conditional attribution. Row r explains image `rows[r].image` under condition
 * `rows[r].condition`; rows come group after group (conditions with equal key sets). **The caller owns
 * every tensor** ({@link disposeCondResult}). */
export interface CondAttributionResult {
  /** Input relevance summed over the colour channels, [rows, H, W]; null when `heatmap: false`. */
  heatmap: tf.Tensor3D | null;
  /** The prediction (logits) of each row's image, or the start layer's activation. */
  prediction: tf.Tensor;
  /** Relevance at each recorded layer's output, [rows, ...]. At a layer the condition masks, the value
   * before the mask (as zennit-crp on PyTorch 1.13). */
  relevances: Record<string, tf.Tensor>;
  /** Activations of the requested layers, [rows, ...]. */
  activations: Record<string, tf.Tensor>;
  rows: PlannedRow[];
}

/** One chunk of rows from {@link CondAttribution.chunks}: rows [offset, offset + rows.length). */
export interface CondAttributionChunk extends CondAttributionResult {
  offset: number;
}

export function disposeCondResult(result: CondAttributionResult): void {
  result.heatmap?.dispose();
  result.prediction.dispose();
  for (const t of Object.values(result.relevances)) t.dispose();
  for (const t of Object.values(result.activations)) t.dispose();
}

interface Plan {
  startId: string;
  stops: string[];
  record: string[];
  /** `segments`: the conditioned layers a group's backward pass restarts at (excludeParallel), from the
   * output towards the input; empty for one masked pass */
  groups: { group: ConditionGroup; rows: PlannedRow[]; paired: boolean; segments: string[] }[];
  total: number;
  chunkSize: number;
  concept: (layer: string) => Concept;
}

/**
 * Concept Relevance Propagation over a TF.js model: relevance conditioned on concepts (channels) in any
 * layers, for many conditions at once. One forward pass per image serves all its conditions: the backward
 * pass runs with relevance of shape [conditions, ...] against the activations of that image, and stops at
 * the lowest layer that is needed.
 *
 * ```ts
 * const crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
 * const { heatmap } = crp.run(image, [{ y: [1], block5_conv3: [12] }, { y: [1], block5_conv3: [40] }]);
 * ```
 */
export class CondAttribution {
  readonly attributor: Attributor;
  private readonly ownsAttributor: boolean;

  /** From a model (the default composite is EpsilonPlusFlat with the batch-norm merge, as zennit-crp's
   * README) or from an existing {@link Attributor}, which stays the caller's. */
  constructor(model: LayersModel | Attributor, options: AttributorOptions = {}) {
    if (model instanceof Attributor) {
      this.attributor = model;
      this.ownsAttributor = false;
    } else {
      this.attributor = new Attributor(model, options);
      this.ownsAttributor = true;
    }
  }

  /** Runs every condition on every image (see `planGroupRows` for the pairing) and returns all rows. */
  run(
    input: tf.Tensor,
    conditions: readonly Condition[],
    options: CondRunOptions = {},
  ): CondAttributionResult {
    const chunks: CondAttributionChunk[] = [];
    try {
      for (const chunk of this.chunks(input, conditions, options)) chunks.push(chunk);
    } catch (err) {
      for (const c of chunks) disposeCondResult(c);
      throw err;
    }
    if (chunks.length === 1) {
      const { offset: _, ...only } = chunks[0]!;
      return only;
    }
    const cat = <T extends tf.Tensor>(parts: T[]) => tf.concat(parts, 0) as T;
    const first = chunks[0]!;
    const result: CondAttributionResult = {
      heatmap: first.heatmap === null ? null : cat(chunks.map((c) => c.heatmap!)),
      prediction: cat(chunks.map((c) => c.prediction)),
      relevances: Object.fromEntries(
        Object.keys(first.relevances).map((k) => [k, cat(chunks.map((c) => c.relevances[k]!))]),
      ),
      activations: Object.fromEntries(
        Object.keys(first.activations).map((k) => [k, cat(chunks.map((c) => c.activations[k]!))]),
      ),
      rows: chunks.flatMap((c) => c.rows),
    };
    for (const c of chunks) disposeCondResult(c);
    return result;
  }

  /**
   * The same computation as {@link run}, yielded chunk by chunk (at most `chunkSize` rows each) so that
   * thousands of conditions run in bounded memory. The caller owns each chunk's tensors.
   */
  *chunks(
    input: tf.Tensor,
    conditions: readonly Condition[],
    options: CondRunOptions = {},
  ): Generator<CondAttributionChunk> {
    const plan = this.plan(input, conditions, options);
    const tick = progressTracker(plan.total, options.onProgress, { unit: 'rows' });
    let done = 0;
    let validated = false;
    // consecutive chunks of the same image(s) share one forward pass
    let pass: ForwardPass | undefined;
    let batch: tf.Tensor | undefined;
    let passImages = '';
    const release = () => {
      pass?.dispose();
      batch?.dispose();
      pass = undefined;
      batch = undefined;
      passImages = '';
    };
    try {
      for (const { group, rows, paired, segments } of plan.groups) {
        let i = 0;
        while (i < rows.length) {
          // a chunk: consecutive rows of one image (broadcast) or of distinct images (paired)
          let j = i + 1;
          while (j < rows.length && j - i < plan.chunkSize && (paired || rows[j]!.image === rows[i]!.image))
            j++;
          const chunkRows = rows.slice(i, j);
          const images = paired ? chunkRows.map((r) => r.image) : [chunkRows[0]!.image];
          if (pass === undefined || passImages !== images.join()) {
            release();
            batch = tf.tidy(() => tf.gather(input, tf.tensor1d(images, 'int32')));
            pass = this.attributor.forward(batch, { upTo: plan.startId });
            passImages = images.join();
          }
          if (!validated) {
            this.validate(pass, conditions, plan, options);
            validated = true;
          }
          const chunk = this.backwardChunk(
            pass,
            conditions,
            group,
            chunkRows,
            plan,
            options,
            paired,
            segments,
          );
          const offset = done;
          done += chunkRows.length;
          i = j;
          try {
            tick(chunkRows.length);
          } catch (err) {
            // the chunk was not handed out yet: it is still ours
            disposeCondResult(chunk);
            throw err;
          }
          yield { ...chunk, offset };
        }
      }
    } finally {
      // also runs when the consumer stops early (return() on the generator)
      release();
    }
  }

  private plan(input: tf.Tensor, conditions: readonly Condition[], options: CondRunOptions): Plan {
    checkConditionList(conditions);
    const g = this.attributor.graph;
    const startId = options.startLayer === undefined ? g.outputId : g.node(options.startLayer).id;
    const above = g.ancestorsOf(startId);
    const record = [...(options.recordLayers ?? [])];
    for (const layer of record) {
      if (!above.has(g.node(layer).id)) {
        throw new CrpError(
          'invalid-argument',
          `cannot record '${layer}': it is not below the start layer '${startId}'`,
        );
      }
    }
    for (const c of conditions) {
      for (const key of Object.keys(c)) {
        if (key === OUTPUT_KEY) continue;
        const id = g.node(key).id;
        if (id === g.inputId) {
          throw new CrpError(
            'invalid-argument',
            `cannot condition on the input layer '${key}'; condition on a layer between the input and the output`,
          );
        }
        if (!above.has(id)) {
          throw new CrpError(
            'invalid-argument',
            `cannot condition on '${key}': relevance from '${startId}' does not pass it. Layers that can be conditioned: ${listNames([...above].filter((n) => n !== g.inputId))}`,
          );
        }
      }
    }
    let stops: string[];
    if (options.heatmap === false) {
      if (record.length === 0) {
        throw new CrpError(
          'invalid-argument',
          'heatmap: false needs recordLayers: the backward pass stops at the lowest recorded layer',
        );
      }
      const ids = [...new Set(record.map((r) => g.node(r).id))];
      // stop at recorded layers that have no other recorded layer below them
      stops = ids.filter((id) => !ids.some((other) => other !== id && g.ancestorsOf(id).has(other)));
    } else {
      stops = [g.inputId];
    }
    if (options.startLayer === undefined && options.initRelevance === undefined) {
      const i = conditions.findIndex((c) => !(OUTPUT_KEY in c));
      if (i >= 0) {
        throw new CrpError(
          'invalid-argument',
          `condition ${i} has no '${OUTPUT_KEY}': say which output to explain ({ ${OUTPUT_KEY}: [class], ... }), or give startLayer or initRelevance (as zennit-crp requires)`,
        );
      }
    }
    const n = input.shape[0]!;
    const given = options.initRelevance;
    if (given instanceof tf.Tensor && given.shape[0] !== 1 && given.shape[0] !== n) {
      throw new CrpError(
        'invalid-argument',
        `initRelevance has shape [${given.shape.join(', ')}]: its batch must be 1 (for every image) or ${n} (one row per image)`,
      );
    }
    const excludeParallel = options.excludeParallel ?? true;
    const groups = groupConditions(conditions).map((group) => ({
      group,
      rows: planGroupRows(group, n),
      paired: n === group.conditions.length && n > 1,
      segments: excludeParallel ? this.segmentsOf(group, startId) : [],
    }));
    const total = groups.reduce((s, x) => s + x.rows.length, 0);
    const maskMap = options.maskMap;
    const concept = (layer: string): Concept => {
      if (maskMap === undefined) return defaultConcept(g, layer);
      if (typeof maskMap === 'function') return maskMap(layer);
      return maskMap[layer] ?? maskMap[g.node(layer).layerName] ?? defaultConcept(g, layer);
    };
    const chunkSize = options.chunkSize ?? this.attributor.rowsThatFit(undefined, above);
    if (!Number.isInteger(chunkSize) || chunkSize < 1) {
      throw new CrpError('invalid-argument', `chunkSize must be a positive integer, got ${chunkSize}`);
    }
    return { startId, stops, record, groups, total, chunkSize, concept };
  }

  private validate(
    pass: ForwardPass,
    conditions: readonly Condition[],
    plan: Plan,
    options: CondRunOptions,
  ): void {
    const g = this.attributor.graph;
    conditions.forEach((c) => {
      for (const [key, indices] of Object.entries(c)) {
        if (key === OUTPUT_KEY) {
          if (options.startLayer !== undefined) continue;
          const classes = pass.prediction.shape[pass.prediction.rank - 1]!;
          for (const i of indices) {
            if (!Number.isInteger(i) || i < 0 || i >= classes) {
              throw new CrpError(
                'invalid-target',
                `y index ${i} is out of range: the model has ${classes} outputs (valid: 0..${classes - 1})`,
              );
            }
          }
          continue;
        }
        plan.concept(key).validate(indices, pass.output(g.node(key).id).shape.slice(1), key);
      }
    });
  }

  /**
   * The conditioned layers of a group (without the start layer) from the output towards the input, where an
   * excludeParallel backward pass restarts. Each must lie below the previous one.
   */
  private segmentsOf(group: ConditionGroup, startId: string): string[] {
    const g = this.attributor.graph;
    const ids = [...new Set(group.keys.filter((k) => k !== OUTPUT_KEY).map((k) => g.node(k).id))].filter(
      (id) => id !== startId,
    );
    ids.sort((a, b) => g.node(b).index - g.node(a).index);
    for (let k = 1; k < ids.length; k++) {
      if (!g.ancestorsOf(ids[k - 1]!).has(ids[k]!)) {
        throw new CrpError(
          'invalid-argument',
          `'${ids[k - 1]}' and '${ids[k]}' lie on parallel branches: with excludeParallel (the default, as zennit-crp) the layers of one condition must lie on one path from the output to the input; condition them separately, or pass excludeParallel: false to mask both in one backward pass`,
        );
      }
    }
    return ids;
  }

  /**
   * The backward pass of one chunk: one pass with the masks applied on the way, or (excludeParallel) one
   * pass per segment between conditioned layers, each starting from the masked relevance where the previous
   * one stopped. Returns the stop and record relevances as the engine's backward does.
   */
  private conditionalBackward(
    pass: ForwardPass,
    init: tf.Tensor,
    plan: Plan,
    segments: readonly string[],
    masks: ReadonlyMap<string, tf.Tensor>,
  ): Map<string, tf.Tensor> {
    const g = this.attributor.graph;
    const mask = (id: string, r: tf.Tensor) => {
      const m = masks.get(id);
      return m === undefined ? undefined : tf.mul(r, m);
    };
    if (segments.length === 0) {
      return this.attributor.backward(pass, {
        from: plan.startId,
        relevance: init,
        stopAt: plan.stops,
        record: plan.record,
        transform: mask,
      });
    }
    const id = (name: string) => g.node(name).id;
    const out = new Map<string, tf.Tensor>();
    const keep = (name: string, t: tf.Tensor) => {
      if (!out.has(name)) out.set(name, t);
      else if (out.get(name) !== t) t.dispose();
    };
    const pending = new Set(plan.record);
    let from = plan.startId;
    let relevance = init;
    try {
      for (let k = 0; k <= segments.length; k++) {
        const reach = g.ancestorsOf(from);
        const stops = plan.stops.filter((s) => reach.has(id(s)) && (k === 0 || id(s) !== from));
        // the next conditioned layer matters only while a stop lies at or below it (with heatmap: false the
        // pass ends at the lowest recorded layers)
        const below = k < segments.length ? g.ancestorsOf(segments[k]!) : undefined;
        const last = below === undefined || !stops.some((s) => below.has(id(s)));
        // stops on branches parallel to the next conditioned layer end there as well
        const stopAt = last
          ? stops
          : [
              segments[k]!,
              ...stops.filter((s) => !below!.has(id(s)) && !g.descendantsOf(segments[k]!).has(id(s))),
            ];
        if (stopAt.length === 0) {
          // nothing left to compute below the last conditioned layer
          if (relevance !== init) relevance.dispose();
          relevance = init;
          break;
        }
        const active = new Set<string>();
        for (const s of stopAt) for (const d of g.descendantsOf(id(s))) if (reach.has(d)) active.add(d);
        const boundary = last ? undefined : segments[k]!;
        // recorded in this segment; the start of a later segment was recorded (before its mask) by the
        // segment above it
        const inSegment = [...pending].filter((r) => active.has(id(r)) && (k === 0 || id(r) !== from));
        // a recorded boundary is taken before its mask, here, since the engine hands out the masked stop
        const atBoundary = inSegment.filter((r) => id(r) === boundary);
        const record = inSegment.filter((r) => id(r) !== boundary);
        const start = from;
        const got = this.attributor.backward(pass, {
          from,
          relevance,
          stopAt,
          record,
          transform: (node, r) => {
            // the start of a later segment arrives masked already
            if (k > 0 && node === start) return undefined;
            if (node === boundary) for (const name of atBoundary) keep(name, tf.clone(r));
            return mask(node, r);
          },
        });
        for (const name of inSegment) pending.delete(name);
        for (const name of record) keep(name, got.get(name)!);
        const next = boundary === undefined ? undefined : got.get(boundary);
        for (const [name, t] of got) if (t !== next && !record.includes(name)) keep(name, t);
        if (relevance !== init) relevance.dispose();
        if (next === undefined) break;
        relevance = next;
        from = boundary!;
      }
    } catch (err) {
      for (const t of out.values()) t.dispose();
      if (relevance !== init) relevance.dispose();
      throw err;
    }
    // layers that only a parallel branch reaches: no relevance arrives there
    for (const name of [...pending, ...plan.stops.filter((s) => !out.has(s))]) {
      if (!out.has(name)) out.set(name, tf.zeros([init.shape[0]!, ...pass.output(id(name)).shape.slice(1)]));
    }
    return out;
  }

  private backwardChunk(
    pass: ForwardPass,
    conditions: readonly Condition[],
    group: ConditionGroup,
    rows: PlannedRow[],
    plan: Plan,
    options: CondRunOptions,
    paired: boolean,
    segments: readonly string[],
  ): CondAttributionResult {
    const g = this.attributor.graph;
    const count = rows.length;
    // per-row copies of per-image tensors: repeat the batch-1 pass for broadcast chunks
    // (a broadcasting multiply: wasm's tile is ~30x slower)
    const perRow = (t: tf.Tensor): tf.Tensor =>
      paired ? tf.clone(t) : tf.tidy(() => tf.mul(tf.ones([count, ...t.shape.slice(1).map(() => 1)]), t));
    const rowMask = (layer: string, shape: readonly number[]): tf.Tensor => {
      const concept = plan.concept(layer);
      const masks = rows.map((r) => concept.mask(conditions[r.condition]![layer]!, shape));
      const size = masks[0]!.data.length;
      const data = new Float32Array(size * count);
      masks.forEach((m, k) => {
        data.set(m.data, k * size);
      });
      return tf.tensor(data, [count, ...masks[0]!.shape]);
    };
    const base = pass.output(plan.startId);
    const yOf = (row: PlannedRow) => [...(conditions[row.condition]![OUTPUT_KEY] ?? [])].sort().join();
    // the rows of one image with the same output mask start with the same relevance: the backward pass above
    // the first conditioned layer runs once (batch 1), and the first mask spreads it to the rows
    const shared = !paired && count > 1 && rows.every((r) => yOf(r) === yOf(rows[0]!));
    const rowsOf = shared ? 1 : count;
    const init = tf.tidy(() => {
      const given = options.initRelevance;
      let r: tf.Tensor;
      if (given === undefined) r = base;
      else if (typeof given === 'number') r = tf.fill(base.shape, given);
      else if (typeof given === 'function') r = given(base);
      else {
        if (given.shape.slice(1).join() !== base.shape.slice(1).join()) {
          throw new CrpError(
            'invalid-argument',
            `initRelevance must have shape [1 or images, ${base.shape.slice(1).join(', ')}], got [${given.shape.join(', ')}]`,
          );
        }
        // batch 1 applies to every image: broadcast it to the pass's batch (count rows when paired)
        r =
          given.shape[0] === 1
            ? tf.broadcastTo(given, base.shape)
            : tf.gather(given, tf.tensor1d(paired ? rows.map((x) => x.image) : [rows[0]!.image], 'int32'));
      }
      if (!shared) r = perRow(r);
      if (options.startLayer === undefined && group.keys.includes(OUTPUT_KEY)) {
        const classes = base.shape[base.rank - 1]!;
        const mask = new Float32Array(rowsOf * classes);
        rows.slice(0, rowsOf).forEach((row, k) => {
          for (const c of conditions[row.condition]![OUTPUT_KEY]!) mask[k * classes + c] = 1;
        });
        r = tf.mul(r, tf.tensor(mask, [rowsOf, classes]));
      }
      return r;
    });
    const masks = new Map<string, tf.Tensor>();
    try {
      for (const key of group.keys) {
        if (key === OUTPUT_KEY) continue;
        const id = g.node(key).id;
        masks.set(id, rowMask(key, pass.output(id).shape.slice(1)));
      }
      const out = this.conditionalBackward(pass, init, plan, segments, masks);
      if (shared) {
        // what no mask reached (recorded above the first conditioned layer, or only on a parallel branch)
        // is still one row: the same for every row
        const spread = new Map<tf.Tensor, tf.Tensor>();
        for (const [name, t] of out) {
          if (t.shape[0] !== 1) continue;
          // one tensor may stand under two names (a recorded stop)
          if (!spread.has(t)) spread.set(t, perRow(t));
          out.set(name, spread.get(t)!);
        }
        for (const t of spread.keys()) t.dispose();
      }
      let heatmap: tf.Tensor3D | null = null;
      if (options.heatmap !== false) {
        const inputRelevance = out.get(g.inputId)!;
        heatmap = tf.sum(inputRelevance, -1) as tf.Tensor3D;
        if (!plan.record.some((r) => out.get(r) === inputRelevance)) inputRelevance.dispose();
      }
      const relevances: Record<string, tf.Tensor> = {};
      for (const layer of plan.record) relevances[layer] = out.get(layer)!;
      for (const [name, t] of out) if (!plan.record.includes(name) && name !== g.inputId) t.dispose();
      const activations: Record<string, tf.Tensor> = {};
      for (const layer of options.recordActivations ?? []) activations[layer] = perRow(pass.output(layer));
      return { heatmap, prediction: perRow(base), relevances, activations, rows };
    } finally {
      // shared rows without an output mask start from the pass's own activation, which later chunks start from too
      if (init !== base) init.dispose();
      for (const m of masks.values()) m.dispose();
    }
  }

  /** Frees the attributor if this object created it. */
  dispose(): void {
    if (this.ownsAttributor) this.attributor.dispose();
  }
}
