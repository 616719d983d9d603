import { describe, expect, it } from 'vitest';
import { analyze, detectLanguage, splitSentences, tokenize } from '../src/index.js';

describe('text analysis', () => {
  it('removes stop words and stems English and German', () => {
    const en = analyze('The rules are propagating relevance through the layers', 'en');
    expect(en).toContain('rule');
    expect(en).toContain('propag');
    expect(en).not.toContain('the');
    const de = analyze('Wir speichern die Einbettungen in Datenbanken', 'de');
    expect(de).toContain('datenbank');
    expect(de).not.toContain('die');
    expect(de).not.toContain('wir');
  });

  it('matches hyphenated and joined German compounds', () => {
    const a = analyze('Vektor-Datenbanken', 'de');
    const b = analyze('Vektordatenbanken', 'de');
    expect(a.some((t) => b.includes(t))).toBe(true);
  });

  it('keeps character spans of tokens', () => {
    const text = 'Zennit explains ﬁne networks';
    const toks = tokenize(text, 'en');
    for (const t of toks) expect(text.slice(t.start, t.end).normalize('NFKC')).toBe(t.surface);
  });

  it('detects German and English', () => {
    expect(
      detectLanguage('Das Programm quilt bietet eine Methode, um Änderungen an den Quellen aufzuzeichnen.'),
    ).toBe('de');
    expect(detectLanguage('The converter writes the weights of the model to a file.')).toBe('en');
  });

  it('splits sentences but not at abbreviations', () => {
    const text = 'Rules are data, e.g. epsilon. They compose! Is it fast? Yes.\n\n- a list item\n- another';
    const s = splitSentences(text);
    expect(s.map((x) => x.text)).toEqual([
      'Rules are data, e.g. epsilon.',
      'They compose!',
      'Is it fast?',
      'Yes.',
      '- a list item',
      '- another',
    ]);
    for (const x of s) expect(text.slice(x.start, x.end)).toBe(x.text);
  });
});
