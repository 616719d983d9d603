import { describe, expect, test } from 'vitest';
import { type Deviation, DeviationLog } from '../src/compare.js';
import { conditionedLayers, logConditionedRelevance } from '../src/kinds/case-helpers.js';

/** A log that also keeps each comparison's name and deviation. */
class RecordingLog extends DeviationLog {
  readonly seen: [string, Deviation][] = [];
  override add(name: string, dev: Deviation): void {
    this.seen.push([name, dev]);
    super.add(name, dev);
  }
}

const conditions = [
  { y: [0], 'features.3': [1] },
  { y: [2], 'features.3': [0, 2] },
];

describe('the conditioned-layer comparison the torch-crp and onnx-crp kinds share', () => {
  test('the conditioned layers are every key but the target y', () => {
    expect([...conditionedLayers([...conditions, { y: [1], fc: [3] }])].sort()).toEqual(['fc', 'features.3']);
  });

  test('torch-crp channel sums ([conditions, C]): only each row`s condition channels are compared', () => {
    // rows of 3 channels; the values outside row 0's channel 1 and row 1's channels 0, 2 differ by 100
    const ours = [1, 2, 3, 4, 5, 6];
    const golden = [101, 2, 103, 4, 105, 6];
    const log = new RecordingLog();
    logConditionedRelevance(log, 'channelRelevance.features.3', 'features.3', conditions, 3, ours, golden);
    expect(log.seen.map(([n]) => n)).toEqual(['channelRelevance.features.3[condition channels]']);
    expect(log.seen[0]![1].maxAbsDiff).toBe(0);
    expect(log.seen[0]![1].maxAbsGolden).toBe(6); // golden 2 | 4, 6 compared
    expect(log.outcome('c', 'torch-crp').passed).toBe(true);
    // a difference on a condition channel fails
    const bad = new RecordingLog();
    logConditionedRelevance(bad, 'r', 'features.3', conditions, 3, [1, 2.5, 3, 4, 5, 6], golden);
    expect(bad.seen[0]![1].maxAbsDiff).toBe(0.5);
    expect(bad.outcome('c', 'torch-crp').passed).toBe(false);
  });

  test('onnx-crp full NHWC relevances ([conditions, H, W, C]): the row is the condition, the channel the last axis', () => {
    // 2 conditions x (H=1, W=2) x C=3: row 0 keeps flat 1, 4; row 1 keeps 6, 8, 9, 11
    const golden = Array.from({ length: 12 }, (_, i) => i + 1);
    const ours = golden.map((v, i) => ([1, 4, 6, 8, 9, 11].includes(i) ? v : v + 100));
    const log = new RecordingLog();
    logConditionedRelevance(log, 'relevances.features.3', 'features.3', conditions, 3, ours, golden);
    expect(log.seen[0]![1].maxAbsDiff).toBe(0);
    expect(log.seen[0]![1].maxAbsGolden).toBe(12);
    // each kept element on its own: a change at flat 9 (row 1, pixel 1, channel 0) is seen, at 10 (channel 1) not
    const at = (i: number) => {
      const l = new RecordingLog();
      logConditionedRelevance(
        l,
        'r',
        'features.3',
        conditions,
        3,
        golden.map((v, k) => (k === i ? v + 1 : v)),
        golden,
      );
      return l.seen[0]![1].maxAbsDiff;
    };
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map(at)).toEqual([0, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0, 1]);
  });

  test('a layer no condition masks is compared whole, under its own name', () => {
    const log = new RecordingLog();
    logConditionedRelevance(
      log,
      'relevances.fc',
      'fc',
      conditions,
      3,
      [1, 2, 3, 4, 5, 6],
      [1, 2, 3, 4, 5, 7],
    );
    expect(log.seen.map(([n]) => n)).toEqual(['relevances.fc']);
    expect(log.seen[0]![1].maxAbsDiff).toBe(1);
  });
});
