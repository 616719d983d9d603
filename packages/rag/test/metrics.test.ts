import { describe, expect, it } from 'vitest';
import {
  aggregateMetrics,
  answerCoverage,
  firstRelevantRank,
  formatSummaryLine,
  keyTermCoverage,
  passageInTexts,
  QueryTranslator,
  questionGroup,
} from '../src/index.js';
import { TINY_DICTIONARY } from './helpers/corpus.js';

describe('evaluation metrics', () => {
  it('computes hit@1, hit@5, MRR@10, passage share, answer and key-term coverage', () => {
    const m = aggregateMetrics([
      { id: 'a', firstRelevantRank: 1, passageFound: true, answerCoverage: 1, keyTermCoverage: 1 },
      { id: 'b', firstRelevantRank: 4, passageFound: false, answerCoverage: 0.5, keyTermCoverage: 0.5 },
      { id: 'c', firstRelevantRank: 11, passageFound: false, answerCoverage: 0.49 },
      { id: 'd', passageFound: false },
    ]);
    expect(m).toEqual({
      questions: 4,
      hitAt1: 0.25,
      hitAt5: 0.5,
      mrrAt10: (1 + 0.25) / 4, // rank 11 is outside the top 10
      passageFound: 0.25,
      answerCovered: 0.5,
      meanAnswerCoverage: (1 + 0.5 + 0.49) / 4,
      // only a and b have key terms: a has all of them, b half
      keyTermQuestions: 2,
      keyTermsCovered: 0.5,
      meanKeyTermCoverage: 0.75,
    });
    expect(formatSummaryLine(m)).toBe('hit@1=0.250 hit@5=0.500 mrr@10=0.313 answer-coverage=0.500');
    expect(aggregateMetrics([])).toMatchObject({ questions: 0, mrrAt10: 0, keyTermsCovered: 0 });
  });

  it('answer coverage: share of the passage content words in the answer (hand-counted)', () => {
    // passage content words (stop words "the", "above", "of", "by" dropped): command, creates, shards, size,
    // 4, MB, 4194304, bytes, default = 9; the answer has shards, 4, MB, created (stem creat), default = 5
    const passage = 'The command above creates shards of size 4 MB (4194304 bytes) by default.';
    expect(answerCoverage('Shards of 4 MB are created by default.', passage)).toBe(5 / 9);
    expect(answerCoverage('The converter writes files.', passage)).toBe(0);
    expect(answerCoverage('', passage)).toBe(0);
    expect(answerCoverage(passage, passage)).toBe(1);
  });

  it('answer coverage across languages counts dictionary translations (hand-counted)', () => {
    const tr = QueryTranslator.fromStemPairs(TINY_DICTIONARY);
    // German content words: speichern, Einbettungen, Vektor, Datenbanken, Vektor-Datenbanken, Modelle,
    // Begrenzung = 7. Through the dictionary the English answer has store, embed, vector, databas and limit
    // (5); "Vektor-Datenbanken" (one hyphenated word) and "Modelle" (German stem modell, not in the
    // dictionary, English "model" is another stem) are not found.
    const de =
      'Wir speichern unsere Einbettungen in Vektor-Datenbanken, da die Modelle eine Begrenzung haben.';
    const en = 'We store embeddings in vector databases because models have a limit.';
    expect(answerCoverage(en, de)).toBe(0);
    expect(answerCoverage(en, de, tr)).toBe(5 / 7);
  });

  it('key-term coverage: a term counts when all its content words are in the answer', () => {
    const answer = 'Shards of 4 MB are created by default.';
    // shards: yes; size: no; "4 MB": 4 and MB both there; "bytes of memory": bytes missing; "the": no content word
    expect(keyTermCoverage(answer, ['shards', 'size', '4 MB', 'bytes of memory', 'the'])).toBe(2 / 4);
    expect(keyTermCoverage(answer, ['Shards', 'default'])).toBe(1);
    expect(keyTermCoverage(answer, [])).toBe(0);
    // German key terms of a German document, answered (or glossed) in English: found through the dictionary
    const tr = QueryTranslator.fromStemPairs(TINY_DICTIONARY);
    const en = 'We store embeddings in vector databases because models have a limit.';
    const keys = ['Einbettungen', 'Begrenzung', 'Modelle'];
    expect(keyTermCoverage(en, keys, { language: 'de' })).toBe(0);
    // Einbettungen -> embed, Begrenzung -> limit; Modelle (stem modell) is not in the dictionary
    expect(keyTermCoverage(en, keys, { language: 'de', translator: tr })).toBe(2 / 3);
  });

  it('groups questions by language pair', () => {
    expect(questionGroup('en', 'en')).toBe('en');
    expect(questionGroup('de', 'de')).toBe('de');
    expect(questionGroup('en', 'de')).toBe('cross-lingual');
    expect(questionGroup('de', 'en')).toBe('cross-lingual');
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
