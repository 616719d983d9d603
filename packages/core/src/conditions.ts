/** The key of a condition that names the model output. */
export const OUTPUT_KEY = 'y';

/**
 * One condition: for each named layer, the concept indices (channels) whose relevance flows on; `y` names
 * the model output (the classes to explain). `{ y: [1], block4_conv3: [370] }` explains class 1 through
 * channel 370 of block4_conv3. Layers may be listed in any order.
 */
export type Condition = Readonly<Record<string, readonly number[]>>;

/** Conditions with the same set of keys, computed together (as zennit-crp does). */
export interface ConditionGroup {
  /** The keys shared by the group, sorted. */
  keys: string[];
  /** Indices into the caller's condition list, in the caller's order. */
  conditions: number[];
}

/** One output row: which image it explains under which condition. */
export interface PlannedRow {
  image: number;
  condition: number;
}

/** Splits conditions into groups of equal key sets, ordered by first appearance (zennit-crp's order). */
export function groupConditions(conditions: readonly Condition[]): ConditionGroup[] {
  const groups = new Map<string, ConditionGroup>();
  conditions.forEach((c, i) => {
    const keys = Object.keys(c).sort();
    const id = JSON.stringify(keys);
    let g = groups.get(id);
    if (g === undefined) {
      g = { keys, conditions: [] };
      groups.set(id, g);
    }
    g.conditions.push(i);
  });
  return [...groups.values()];
}

/**
 * The rows of one group for N images: with N == K conditions row i pairs image i with condition i;
 * otherwise rows are image-major: (image 0, cond 0), (image 0, cond 1), ..., (image 1, cond 0), ...
 */
export function planGroupRows(group: ConditionGroup, imageCount: number): PlannedRow[] {
  const k = group.conditions.length;
  if (imageCount === k) return group.conditions.map((condition, image) => ({ image, condition }));
  const rows: PlannedRow[] = [];
  for (let image = 0; image < imageCount; image++) {
    for (const condition of group.conditions) rows.push({ image, condition });
  }
  return rows;
}

/** Rejects malformed condition lists with a message that says what is valid. */
export function checkConditionList(conditions: readonly Condition[]): void {
  if (!Array.isArray(conditions) || conditions.length === 0) {
    throw new CrpError(
      'invalid-argument',
      'the condition list is empty; give at least one condition, e.g. [{ y: [0] }] or [{ y: [0], block5_conv3: [12] }]',
    );
  }
  conditions.forEach((c, i) => {
    if (c === null || typeof c !== 'object' || Array.isArray(c)) {
      throw new CrpError(
        'invalid-argument',
        `condition ${i} must be an object like { y: [0], layerName: [channel, ...] }`,
      );
    }
    for (const [key, indices] of Object.entries(c)) {
      if (!Array.isArray(indices)) {
        throw new CrpError(
          'invalid-argument',
          `condition ${i}: '${key}' must map to an array of indices, e.g. { ${key}: [${typeof indices === 'number' ? indices : 0}] }`,
        );
      }
    }
  });
}

import { CrpError } from '@crp/common';
