import { describe, expect, it } from 'vitest';
import { aggregateMetrics, firstRelevantRank, formatSummaryLine, passageInTexts } from '../src/index.js';

describe('evaluation metrics', () => {
  it('computes hit@1, hit@5, MRR and passage share', () => {
    const m = aggregateMetrics([
      { id: 'a', firstRelevantRank: 1, passageFound: true },
      { id: 'b', firstRelevantRank: 4, passageFound: false },
      { id: 'c', firstRelevantRank: 8, passageFound: false },
      { id: 'd', passageFound: false },
    ]);
    expect(m).toEqual({
      questions: 4,
      hitAt1: 0.25,
      hitAt5: 0.5,
      mrr: (1 + 0.25 + 0.125) / 4,
      passageFound: 0.25,
    });
    expect(formatSummaryLine(m)).toBe('hit@5=0.500 mrr=0.344');
    expect(aggregateMetrics([])).toMatchObject({ questions: 0, mrr: 0 });
  });

  it('ranks the first relevant file and matches passages after collapsing white space', () => {
    expect(firstRelevantRank(['x', 'docs/a.md', 'docs/a.md'], ['docs/a.md', 'docs/b.md'])).toBe(2);
    expect(firstRelevantRank(['x'], ['y'])).toBeUndefined();
    expect(
      passageInTexts('shards of\nsize 4 MB', ['The command creates shards  of size\t4 MB by default.']),
    ).toBe(true);
    expect(passageInTexts('missing', ['other'])).toBe(false);
  });
});
