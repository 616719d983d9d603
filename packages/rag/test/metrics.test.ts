import { describe, expect, it } from 'vitest';
import {
  aggregateMetrics,
  answerCoverage,
  firstRelevantRank,
  formatSummaryLine,
  passageInTexts,
  QueryTranslator,
} from '../src/index.js';
import { TINY_DICTIONARY } from './helpers/corpus.js';

describe('evaluation metrics', () => {
  it('computes hit@1, hit@5, MRR@10, passage share and answer coverage', () => {
    const m = aggregateMetrics([
      { id: 'a', firstRelevantRank: 1, passageFound: true, answerCoverage: 1 },
      { id: 'b', firstRelevantRank: 4, passageFound: false, answerCoverage: 0.5 },
      { id: 'c', firstRelevantRank: 11, passageFound: false, answerCoverage: 0.49 },
      { id: 'd', passageFound: false },
    ]);
    const mrr = (1 + 0.25) / 4; // rank 11 is outside the top 10
    expect(m).toEqual({
      questions: 4,
      hitAt1: 0.25,
      hitAt5: 0.5,
      mrrAt10: mrr,
      mrr,
      passageFound: 0.25,
      answerCovered: 0.5,
      meanAnswerCoverage: (1 + 0.5 + 0.49) / 4,
    });
    expect(formatSummaryLine(m)).toBe('hit@1=0.250 hit@5=0.500 mrr@10=0.313 answer-coverage=0.500');
    expect(aggregateMetrics([])).toMatchObject({ questions: 0, mrrAt10: 0 });
  });

  it('answer coverage: share of the passage content words in the answer, also across languages', () => {
    // content words of the passage: command, creates, shards, size, 4, mb, default (7)
    const passage = 'The command above creates shards of size 4 MB (4194304 bytes) by default.';
    expect(answerCoverage('Shards of 4 MB are created by default.', passage)).toBeCloseTo(
      answerCoverage('shards 4 mb create default', passage),
      12,
    );
    expect(answerCoverage('', passage)).toBe(0);
    expect(answerCoverage(passage, passage)).toBe(1);
    const tr = QueryTranslator.fromStemPairs(TINY_DICTIONARY);
    const de =
      'Wir speichern unsere Einbettungen in Vektor-Datenbanken, da die Modelle eine Begrenzung haben.';
    const en = 'We store embeddings in vector databases because models have a limit.';
    expect(answerCoverage(en, de)).toBe(0);
    // speichern, Einbettungen, Vektor, Datenbanken, Begrenzung are translated; Vektor-Datenbanken and Modelle are not
    expect(answerCoverage(en, de, tr)).toBeGreaterThanOrEqual(0.5);
  });

  it('ranks the first relevant file and matches passages after collapsing white space', () => {
    expect(firstRelevantRank(['x', 'docs/a.md', 'docs/a.md'], ['docs/a.md', 'docs/b.md'])).toBe(2);
    expect(firstRelevantRank(['x'], ['y'])).toBeUndefined();
    expect(
      passageInTexts('shards of\nsize 4 MB', ['The command creates shards  of size\t4 MB by default.']),
    ).toBe(true);
    expect(passageInTexts('missing', ['other'])).toBe(false);
    // chunks hold clean text: Markdown markup in a passage does not hide it
    expect(
      passageInTexts('uses `text-embedding-ada-002` by **default**', [
        'It uses text-embedding-ada-002 by default.',
      ]),
    ).toBe(true);
  });
});
