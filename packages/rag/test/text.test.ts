import { describe, expect, it } from 'vitest';
import {
  analyze,
  analyzeQuery,
  Bm25Index,
  decompound,
  detectLanguage,
  QueryTranslator,
  splitCompound,
  splitSentences,
  stem,
  tokenize,
  unsupportedLanguage,
} from '../src/index.js';
import { germanBaseForms, germanLemmaTerm } from '../src/text/analyzer.js';
import { questionLanguage } from '../src/text/query.js';
import { isCognate } from '../src/translate/cognates.js';
import { questionGloss } from '../src/translate/gloss.js';
import { TINY_DICTIONARY } from './helpers/corpus.js';

describe('analyzer', () => {
  it('drops stop words by their surface form: "why", "does", "not", "will", "one" never become keywords', () => {
    expect(analyze('Why does the rule not work and will one of them help?', 'en')).toEqual([
      'en:rule',
      'en:work',
      'en:help',
    ]);
    // inflected forms are on the list themselves
    expect(analyze('doing ones getting', 'en')).toEqual([]);
    expect(analyze('Warum wurden die Regeln nicht gespeichert?', 'de')).toEqual([
      `de:${stem('regeln', 'de')}`,
      `de:${stem('gespeichert', 'de')}`,
    ]);
  });

  it('keeps content words whose stem is a stop word\'s: "Ebene", "Seite", "Länge", "name" (issue 24)', () => {
    // "Ebene" stems to "eben", "Seite" to "seit", "Länge" to "lang", "sicher" to "sich", "name" to "namely"'s stem
    expect(stem('ebene', 'de')).toBe(stem('eben', 'de'));
    expect(analyze('Auf der Ebene einer Seite ist die Länge sicher', 'de')).toEqual([
      `de:${stem('ebene', 'de')}`,
      `de:${stem('seite', 'de')}`,
      `de:${stem('länge', 'de')}`,
      `de:${stem('sicher', 'de')}`,
    ]);
    expect(analyze('the name is useful', 'en')).toEqual([
      `en:${stem('name', 'en')}`,
      `en:${stem('useful', 'en')}`,
    ]);
    // the stop words themselves and their inflected forms still get no term
    expect(
      analyze('eben seit eine einem einer eines der dem den unseren mehrere folgenden möchten', 'de'),
    ).toEqual([]);
    expect(analyze('being ours namely getting makes', 'en')).toEqual([]);
  });

  it('indexes the nouns of the German stop list as the words they are: "Teil" and "Teile", "Weg" and "Wege" alike', () => {
    expect(analyze('Teil Teile Weg Wege Suche Zeit', 'de')).toEqual([
      `de:${stem('teil', 'de')}`,
      `de:${stem('teil', 'de')}`,
      `de:${stem('weg', 'de')}`,
      `de:${stem('weg', 'de')}`,
      `de:${stem('suche', 'de')}`,
      `de:${stem('zeit', 'de')}`,
    ]);
  });

  it('indexes every form of an adjective of the German stop list alike: "neue" as "neu", "große" as "groß"', () => {
    // "neue" and "neuen" were on the list, "neu" and "neues" not: the same word was a term in one form only
    const neu = `de:${stem('neu', 'de')}`;
    expect(analyze('neu neue neuen neues', 'de')).toEqual([neu, neu, neu, neu]);
    expect(analyze('große Modelle sind möglich', 'de')).toEqual([
      `de:${stem('große', 'de')}`,
      `de:${stem('modelle', 'de')}`,
      `de:${stem('möglich', 'de')}`,
    ]);
  });

  it('gives each word one term, stemmed in the text language only (no English+German double counting)', () => {
    const en = tokenize('Embeddings are stored', 'en');
    expect(en.map((t) => t.term)).toEqual(['en:embed', 'en:store']);
    const de = tokenize('Wir speichern Einbettungen', 'de');
    expect(de.map((t) => t.term)).toEqual(['de:speich', 'de:einbett']);
    expect(de.map((t) => [t.surface, t.start, t.end])).toEqual([
      ['speichern', 4, 13],
      ['Einbettungen', 14, 26],
    ]);
  });

  it('splits hyphenated words; German also keeps the joined compound', () => {
    expect(analyze('RAG-Token', 'en')).toEqual(['en:rag', 'en:token']);
    expect(analyze('Vektor-Datenbanken', 'de')).toEqual(['de:vektor', 'de:datenbank', 'de:vektordatenbank']);
  });

  it('detects German and English from function words, also in short questions', () => {
    expect(detectLanguage('Wofür wird das Programm quilt verwendet?')).toBe('de');
    expect(detectLanguage('What is the default shard size of the converter?')).toBe('en');
    expect(detectLanguage('Mit welchen Parametern wird der Index erstellt?')).toBe('de');
    expect(detectLanguage('quilt')).toBe('en');
  });

  it('splits sentences without breaking at abbreviations', () => {
    const s = splitSentences('This works, e.g. for tables. Dies gilt z.B. für Listen. Last one!');
    expect(s.map((x) => x.text)).toEqual([
      'This works, e.g. for tables.',
      'Dies gilt z.B. für Listen.',
      'Last one!',
    ]);
  });

  it('ends a sentence after "etc." and "usw.", but not after "vgl.", "eg.", "vol.", a German ordinal or an item number', () => {
    const split = (text: string) => splitSentences(text).map((x) => x.text);
    expect(
      split(
        'Es gibt README, TODO usw. Beachten Sie die Reihenfolge. Tools like pip, conda etc. The rest is easy.',
      ),
    ).toEqual([
      'Es gibt README, TODO usw.',
      'Beachten Sie die Reihenfolge.',
      'Tools like pip, conda etc.',
      'The rest is easy.',
    ]);
    expect(
      split('Siehe vgl. Kapitel 4 und ggf. Abb. 2 dazu. Der 2. Schritt folgt am 3. Tag. Fertig.'),
    ).toEqual(['Siehe vgl. Kapitel 4 und ggf. Abb. 2 dazu.', 'Der 2. Schritt folgt am 3. Tag.', 'Fertig.']);
    expect(
      split(
        'Attribution differs across layers, eg. BatchNorm comes first. In: Nature, vol. 10, pp. 1-9. Next.',
      ),
    ).toEqual([
      'Attribution differs across layers, eg. BatchNorm comes first.',
      'In: Nature, vol. 10, pp. 1-9.',
      'Next.',
    ]);
    // the number of a list item run into a line belongs to its item; a number closing a sentence ends it
    expect(
      split(
        'Define two things: 1. The metrics to use. 2. The explanations. It was set to 1. This limits it.',
      ),
    ).toEqual([
      'Define two things: 1. The metrics to use.',
      '2. The explanations.',
      'It was set to 1.',
      'This limits it.',
    ]);
  });
});

describe('BM25 from saved term ids', () => {
  it('scores exactly as the index built from term strings (what an opened index uses)', () => {
    let seed = 3;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const docs = Array.from({ length: 60 }, () => Array.from({ length: 5 + rand(30) }, () => `t${rand(40)}`));
    const vocabulary: string[] = [];
    const idOf = new Map<string, number>();
    const ids = docs.map((d) =>
      d.map((t) => {
        if (!idOf.has(t)) {
          idOf.set(t, vocabulary.length);
          vocabulary.push(t);
        }
        return idOf.get(t)!;
      }),
    );
    const lengths = docs.map((d) => d.length - (d.length % 3));
    const fromStrings = new Bm25Index(docs, {}, lengths);
    const fromIds = new Bm25Index({ vocabulary, chunks: ids }, {}, lengths);
    for (const query of [['t1'], ['t2', 't7', 't7'], ['t39', 'nothing'], vocabulary]) {
      expect([...fromIds.scoreAll(query)]).toEqual([...fromStrings.scoreAll(query)]);
    }
    for (let d = 0; d < docs.length; d += 7)
      for (const t of ['t0', 't5', 't33'])
        expect(fromIds.termFrequency(t, d)).toBe(fromStrings.termFrequency(t, d));
    expect(fromIds.documentFrequency('t4')).toBe(fromStrings.documentFrequency('t4'));
  });
});

describe('cross-lingual query concepts', () => {
  const tr = QueryTranslator.fromStemPairs(TINY_DICTIONARY, { source: 'test' });

  it('translates stems in both directions, best translation weight 1', () => {
    expect(tr.translate('store', 'en')).toEqual([{ term: 'speich', weight: 1 }]);
    expect(tr.translate('speich', 'de')).toEqual([
      { term: 'store', weight: 1 },
      { term: 'save', weight: 0.8 },
    ]);
    expect(tr.translate('nothing', 'en')).toEqual([]);
    expect(() => QueryTranslator.fromStemPairs('')).toThrow(/no pairs/);
  });

  it('looks pairs up in the raw lines as a plain parse of them would (many keys, shared keys, exclusions)', () => {
    // a seeded dictionary of 3,000 lines: 400 German and 300 English keys, so keys repeat and hash slots collide
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const lines = Array.from({ length: 3000 }, () => `d${rand(400)}\te${rand(300)}\t${1 + rand(9)}`);
    const exclude: [string, string][] = [[lines[0]!.split('\t')[0]!, lines[0]!.split('\t')[1]!]];
    const t = QueryTranslator.fromStemPairs(`${lines.join('\n')}\nbroken line\n`, { exclude, maxPerTerm: 4 });
    const reference = (term: string, from: 'de' | 'en') => {
      const got: [string, number][] = [];
      for (const l of lines) {
        const [de, en, w] = l.split('\t') as [string, string, string];
        if (de === exclude[0]![0] && en === exclude[0]![1]) continue;
        if ((from === 'de' ? de : en) === term) got.push([from === 'de' ? en : de, Number(w)]);
      }
      got.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
      return got.slice(0, 4).map(([x, w]) => ({ term: x, weight: w / got[0]![1] }));
    };
    for (let k = 0; k < 400; k += 7) expect(t.translate(`d${k}`, 'de')).toEqual(reference(`d${k}`, 'de'));
    for (let k = 0; k < 300; k += 5) expect(t.translate(`e${k}`, 'en')).toEqual(reference(`e${k}`, 'en'));
    expect(t.lexicon('de').has('d1')).toBe(false); // shorter than 3 letters
    expect(t.lexicon('de').has('d10')).toBe(reference('d10', 'de').length > 0);
    expect(t.size).toEqual({
      de: new Set(lines.map((l) => l.split('\t')[0])).size,
      en: new Set(lines.map((l) => l.split('\t')[1])).size,
    });
    expect(t.fingerprint).not.toBe(QueryTranslator.fromStemPairs(lines.join('\n')).fingerprint);
  });

  it('a question word becomes one concept with its stems and its translations (weight 0.8)', () => {
    const q = analyzeQuery('Why are embeddings stored?', { translator: tr });
    expect(q.language).toBe('en');
    expect(q.concepts.map((c) => c.word)).toEqual(['embeddings', 'stored']);
    const stored = q.concepts[1]!.terms;
    expect(stored[0]).toEqual({ term: 'en:store', weight: 1, via: 'word', language: 'en' });
    expect(stored).toContainEqual({ term: 'de:speich', weight: 0.8, via: 'translation', language: 'de' });
    // a word the dictionary does not know as German is also searched as German would stem it ("Embeddings" in German text)
    expect(q.concepts[0]!.terms).toContainEqual({
      term: `de:${stem('embeddings', 'de')}`,
      weight: 1,
      via: 'word',
      language: 'de',
    });
    expect(q.concepts[0]!.terms).toContainEqual({
      term: 'de:einbett',
      weight: 0.8,
      via: 'translation',
      language: 'de',
    });
  });

  it('two adjacent words translate as a phrase into a German compound', () => {
    const q = analyzeQuery('Which vector database is used?', { translator: tr });
    const phrase = q.concepts.find((c) => c.word === 'vector database');
    expect(phrase?.terms).toEqual([
      { term: 'de:vektordatenbank', weight: 0.8, via: 'translation', language: 'de' },
    ]);
  });

  it('names and acronyms are not translated; a look-alike word of the other language is not searched', () => {
    const q = analyzeQuery('Does the Rule engine stand?', { translator: tr });
    const rule = q.concepts.find((c) => c.word === 'Rule')!;
    expect(rule.terms.filter((t) => t.via === 'translation')).toEqual([]);
    const stand = q.concepts.find((c) => c.word === 'stand')!;
    // German "Stand" is a German word of its own: it is searched only because the dictionary lists it as a
    // translation (here the only one, so at the full translation weight), not as a look-alike at weight 1
    expect(stand.terms).toEqual([
      { term: 'en:stand', weight: 1, via: 'word', language: 'en' },
      { term: 'de:stand', weight: 0.8, via: 'translation', language: 'de' },
    ]);
    const state = analyzeQuery('What state?', { translator: tr }).concepts[0]!;
    // German has no word "stat" in this dictionary, so that look-alike is searched (a term used untranslated)
    expect(state.terms.map((t) => t.term)).toEqual(['en:state', 'de:stat', 'de:stand', 'de:zustand']);
    // a name is searched as it is written in the other language too
    expect(rule.terms.map((t) => t.term)).toEqual(['en:rule', 'de:rul']);
  });
  it('a word of capitals among words set in capitals is translated; an acronym is not', () => {
    const tr = QueryTranslator.fromStemPairs('nam\tname\t1\nrag\tfuri\t1\n');
    const q = analyzeQuery('Was steht unter VERSIONSGESCHICHTE NAME über RAG?', {
      language: 'de',
      translator: tr,
    });
    const name = q.concepts.find((c) => c.word === 'NAME')!;
    expect(name.terms.filter((t) => t.via === 'translation').map((t) => t.term)).toEqual(['en:name']);
    const rag = q.concepts.find((c) => c.word === 'RAG')!;
    expect(rag.terms.filter((t) => t.via === 'translation')).toEqual([]);
  });

  it('a word its own language neither knows nor translates is searched as the other language word', () => {
    // "State" in a German question is English: German has no "stat", so English "state" is searched, although
    // English has that word in the dictionary (for an English question it would be a translation's look-alike)
    const q = analyzeQuery('Wie ändert sich der State?', { translator: tr });
    expect(q.language).toBe('de');
    const state = q.concepts.find((c) => c.word === 'State')!;
    expect(state.terms).toContainEqual({ term: 'en:state', weight: 1, via: 'word', language: 'en' });
  });

  it('the parts of a German compound are translated too, at half the translation weight', () => {
    const q = analyzeQuery('Wo steht die Vektorgrenze?', { translator: tr });
    const compound = q.concepts.find((c) => c.word === 'Vektorgrenze')!;
    expect(compound.terms).toContainEqual({ term: 'de:grenz', weight: 0.5, via: 'word', language: 'de' });
    expect(compound.terms).toContainEqual({
      term: 'en:limit',
      weight: 0.4,
      via: 'translation',
      language: 'en',
    });
    expect(compound.terms).toContainEqual({
      term: 'en:vector',
      weight: 0.4,
      via: 'translation',
      language: 'en',
    });
  });
});

describe('cognate translations (the same technical word in both spellings)', () => {
  it('recognises a stem pair that differs by spelling (c/z as k, ph as f, th as t, y as i, double letters) or an ending', () => {
    expect(isCognate('metric', 'metrik')).toBe(true);
    expect(isCognate('discrep', 'diskrepanz')).toBe(true); // an ending of up to 3 letters on a long stem
    expect(isCognate('concept', 'konzept')).toBe(true); // c -> k, z -> k
    expect(isCognate('photograph', 'fotograf')).toBe(true);
    expect(isCognate('theori', 'theori')).toBe(true);
    expect(isCognate('rate', 'rat')).toBe(true); // a short stem may differ by one letter
    expect(isCognate('sponsor', 'sponsor')).toBe(true);
  });

  it('does not take different words, short look-alikes with longer endings or phrases for cognates', () => {
    expect(isCognate('store', 'speich')).toBe(false);
    expect(isCognate('actual', 'aktuell')).toBe(false); // "aktual" is not the start of "aktuel"
    expect(isCognate('rat', 'ration')).toBe(false); // a short stem with a 3-letter ending
    expect(isCognate('ab', 'ab')).toBe(false); // too short to tell
    expect(isCognate('cosin', 'kosinus funktion')).toBe(false); // phrases are not single-term matches
  });

  it('translateAll lists every translation; translate keeps the heaviest maxPerTerm of them', () => {
    const tr = QueryTranslator.fromStemPairs('mass\tmetric\t5\nkennzahl\tmetric\t4\nmetrik\tmetric\t1\n', {
      maxPerTerm: 2,
    });
    expect(tr.translateAll('metric', 'en')).toEqual([
      { term: 'mass', weight: 1 },
      { term: 'kennzahl', weight: 0.8 },
      { term: 'metrik', weight: 0.2 },
    ]);
    expect(tr.translate('metric', 'en')).toEqual(tr.translateAll('metric', 'en').slice(0, 2));
  });

  it('a question word searches its cognate at the best translation weight, even where the dictionary ranks it below the kept ones', () => {
    const metric = stem('metric', 'en');
    const rate = stem('rate', 'en');
    const tr = QueryTranslator.fromStemPairs(
      [
        `mass\t${metric}\t5`,
        `kennzahl\t${metric}\t4`,
        `${stem('metrik', 'de')}\t${metric}\t1`,
        `${stem('messgröße', 'de')}\t${metric}\t1`,
        `kur\t${rate}\t3`,
        `quot\t${rate}\t3`,
        `${stem('rate', 'de')}\t${rate}\t1`,
      ].join('\n'),
      { maxPerTerm: 2 },
    );
    const q = analyzeQuery('Which metric rate?', { translator: tr });
    const terms = (word: string) => q.concepts.find((c) => c.word === word)!.terms;
    // the cognate is searched at 0.8 (the translation weight times 1), first among the translations
    expect(terms('metric')).toContainEqual({
      term: 'de:metrik',
      weight: 0.8,
      via: 'translation',
      language: 'de',
    });
    expect(terms('metric')).toContainEqual({
      term: 'de:mass',
      weight: 0.8,
      via: 'translation',
      language: 'de',
    });
    // a translation beyond the kept two that is no cognate stays out
    expect(terms('metric').map((t) => t.term)).not.toContain(`de:${stem('messgröße', 'de')}`);
    expect(terms('rate')).toContainEqual({
      term: `de:${stem('rate', 'de')}`,
      weight: 0.8,
      via: 'translation',
      language: 'de',
    });
    // so BM25 finds the German text that uses the cognate, which the kept translations alone would miss
    const bm25 = new Bm25Index([
      analyze('Die Metrik misst die Güte.', 'de'),
      analyze('Das Wetter ist gut.', 'de'),
    ]);
    const scores = bm25.scoreConcepts(q.concepts);
    expect(scores[0]).toBeGreaterThan(0);
    expect(scores[1]).toBe(0);
  });
});

describe('question words the dictionary lists under their base form', () => {
  const pairs = [
    `${stem('regeln', 'de')}\tregul\t1`,
    `${stem('regel', 'de')}\t${stem('rule', 'en')}\t1`,
    `${stem('billig', 'de')}\t${stem('cheap', 'en')}\t1`,
    `${stem('groß', 'de')}\t${stem('large', 'en')}\t1`,
    `${stem('groß', 'de')}\t${stem('big', 'en')}\t1`,
    `${stem('einfach', 'de')}\t${stem('easy', 'en')}\t1`,
  ].join('\n');
  const tr = QueryTranslator.fromStemPairs(pairs);
  const translations = (question: string, word: string) =>
    analyzeQuery(question, { translator: tr })
      .concepts.find((c) => c.word === word)!
      .terms.filter((t) => t.via === 'translation')
      .map((t) => t.term);

  it("a German plural noun inside the sentence also searches its singular's translations (Regeln: regulate and rule)", () => {
    expect(translations('Wie sind die Regeln umgesetzt?', 'Regeln')).toEqual([
      'en:regul',
      `en:${stem('rule', 'en')}`,
    ]);
    // the verb (lower case) and a capitalised word at the start of the sentence keep their own translations only
    expect(translations('Wie kann man das regeln?', 'regeln')).toEqual(['en:regul']);
    expect(translations('Regeln sie das?', 'Regeln')).toEqual(['en:regul']);
  });

  it('an English comparative or superlative the dictionary does not know is translated as its base form', () => {
    expect(translations('Why is it cheaper?', 'cheaper')).toEqual([`de:${stem('billig', 'de')}`]);
    expect(translations('Which one is larger?', 'larger')).toEqual([`de:${stem('groß', 'de')}`]);
    expect(translations('Which one is bigger?', 'bigger')).toEqual([`de:${stem('groß', 'de')}`]);
    expect(translations('Which is the easiest?', 'easiest')).toEqual([`de:${stem('einfach', 'de')}`]);
    // a word that only looks like one ("number" is no comparative of "numb") gets nothing made up
    expect(translations('Which number?', 'number')).toEqual([]);
  });
});

describe('the language of a question without function words of one language only', () => {
  const tr = QueryTranslator.fromStemPairs(
    `${stem('berechnen', 'de')}\t${stem('compute', 'en')}\t1\nherausrag\t${stem('saliency', 'en')}\t1`,
  );

  it('is the language whose dictionary side alone knows more of its words, German on a tie', () => {
    // "was" and "in" are words of both languages; "berechnet" is German (by its base form "berechnen"),
    // "Saliency" English: a tie, and English technical words are common in German questions
    expect(detectLanguage('Was berechnet Saliency in Captum?')).toBe('en');
    expect(questionLanguage('Was berechnet Saliency in Captum?', tr)).toBe('de');
    expect(analyzeQuery('Was berechnet Saliency in Captum?', { translator: tr }).language).toBe('de');
    expect(questionLanguage('Saliency in Captum?', tr)).toBe('en');
    expect(questionLanguage('Was berechnet Saliency in Captum?')).toBe('en'); // no dictionary: as before
  });

  it('leaves a question with function words of one language to detectLanguage', () => {
    expect(questionLanguage('What does berechnet mean?', tr)).toBe('en');
    expect(questionLanguage('Wie wird die Saliency berechnet?', tr)).toBe('de');
  });

  it('takes a short question by one function word when the other language has none', () => {
    // one German-only word ("ist", "wie", "sind") is too little for detectLanguage (1.5 points), not for a question
    for (const q of ['Was ist LRP?', 'Wie funktioniert Occlusion?', 'Was sind Composites?']) {
      expect(detectLanguage(q)).toBe('en');
      expect(questionLanguage(q)).toBe('de');
      expect(questionLanguage(q, tr)).toBe('de');
    }
    expect(questionLanguage('Is LRP fast?')).toBe('en');
    // a German word in an English question does not outweigh the English function words
    expect(questionLanguage('What is the Ansatz of LRP?')).toBe('en');
  });

  it('leaves out the verb of "how does X work" / "wie funktioniert X": it asks about X', () => {
    const words = (q: string) => analyzeQuery(q, { translator: tr }).concepts.map((c) => c.word);
    expect(words('Wie funktioniert Occlusion in Captum?')).toEqual(['Occlusion', 'Captum']);
    expect(words('Wie funktionieren Composites?')).toEqual(['Composites']);
    expect(words('How does Occlusion work?')).toEqual(['Occlusion']);
    // "work" elsewhere is a word of the question
    expect(words('How does the retriever work in LlamaIndex?')).toContain('work');
    expect(words('Which work does LRP build on?')).toContain('work');
  });
});

describe('BM25 with concepts', () => {
  // three documents; hand-computed with k1 = 1.2, b = 0.75
  const docs = [['regel', 'regel', 'gamma'], ['rule', 'epsilon'], ['gamma']];
  const bm = new Bm25Index(docs);
  const idf = (df: number) => Math.log(1 + (3 - df + 0.5) / (df + 0.5));
  const sat = (tf: number, len: number) => (tf * 2.2) / (tf + 1.2 * (0.25 + (0.75 * len) / 2));

  it('scores a single term as Okapi BM25', () => {
    const s = bm.scoreAll(['gamma']);
    expect(s[0]).toBeCloseTo(idf(2) * sat(1, 3), 12);
    expect(s[2]).toBeCloseTo(idf(2) * sat(1, 1), 12);
    expect(s[1]).toBe(0);
  });

  it('counts a word and its translation once: synonyms share one tf and one df', () => {
    const concept = {
      word: 'rule',
      start: 0,
      end: 4,
      terms: [
        { term: 'rule', weight: 1, via: 'word' as const, language: 'en' as const },
        { term: 'regel', weight: 0.8, via: 'translation' as const, language: 'de' as const },
      ],
    };
    const s = bm.scoreConcepts([concept]);
    expect(s[0]).toBeCloseTo(idf(2) * sat(1.6, 3), 12); // 2 x "regel" at weight 0.8
    expect(s[1]).toBeCloseTo(idf(2) * sat(1, 2), 12);
    expect(bm.conceptMatch(concept, 0)).toMatchObject({ tf: 1.6, matched: ['regel'] });
    // two separate concepts would add up to more than the one concept
    const separate = bm.scoreAll(['rule', 'regel']);
    expect(separate[0]! + separate[1]!).toBeGreaterThan(s[0]! + s[1]!);
  });
});

describe('German compounds', () => {
  const lexicon = new Set(['klein', 'buchstab', 'paket', 'nam', 'vektor', 'datenbank', 'ein', 'ung', 'bett']);

  it('splits a compound into two words of the lexicon, with joining letters; never into a stop word or a suffix', () => {
    const parts = (w: string) => splitCompound(w, lexicon)?.spans.map(([a, b]) => w.slice(a, b));
    expect(parts('kleinbuchstaben')).toEqual(['klein', 'buchstaben']);
    expect(parts('paketnamen')).toEqual(['paket', 'namen']);
    expect(parts('einbettungen')).toBeUndefined(); // not "ein" + "bettungen", not "einbett" + "ungen"
    expect(parts('vektor')).toBeUndefined();
  });

  it('indexes the parts as extra terms (they do not lengthen the text) and keeps their places', () => {
    const tokens = tokenize('Nur Kleinbuchstaben im Paketnamen.', 'de', { germanLexicon: lexicon });
    // only the inflected "kleine", "kleiner", ... are stop words, so the part "klein" is a term (issue 24)
    expect(tokens.map((t) => [t.term, t.extra ?? false])).toEqual([
      [`de:${stem('kleinbuchstaben', 'de')}`, false],
      ['de:klein', true],
      ['de:buchstab', true],
      [`de:${stem('paketnamen', 'de')}`, false],
      ['de:paket', true],
      ['de:nam', true],
    ]);
  });
});

describe('decompounding (any number of parts, joining letters)', () => {
  // the lexicon holds Snowball stems, as the dictionary's German side does
  const lexicon = new Set(
    ['Relevanz', 'Propagation', 'Bildung', 'Startup', 'Datenbank', 'Daten', 'Bank', 'System', 'Verwaltung']
      .concat(['Sonne', 'Energie', 'Wissen', 'Fenster'])
      .map((w) => stem(w.toLowerCase(), 'de')),
  );
  const parts = (w: string, maxParts?: number) =>
    decompound(w, lexicon, maxParts ? { maxParts } : {})?.map(([a, b]) => w.slice(a, b));

  it('splits into dictionary words; a joining -s-/-es-/-n-/-en- stays with its part when Snowball strips it, else is left out', () => {
    expect(parts('relevanzpropagation')).toEqual(['relevanz', 'propagation']);
    // "bildungs", "wissens", "sonnen" stem to "bild", "wiss", "sonn": words of the lexicon with their joining letters
    expect(parts('bildungsstartup')).toEqual(['bildungs', 'startup']);
    expect(parts('wissensfenster')).toEqual(['wissens', 'fenster']);
    expect(parts('sonnenenergie')).toEqual(['sonnen', 'energie']);
    // Snowball keeps an -s after "z" ("relevanzs"): the joining letter is left out
    expect(parts('relevanzspropagation')).toEqual(['relevanz', 'propagation']);
  });

  it('takes the fewest parts, then the longest last part; three parts where two do not do', () => {
    // "datenbank" is a word, so not daten + bank + system
    expect(parts('datenbanksystem')).toEqual(['datenbank', 'system']);
    expect(parts('datenbankverwaltungssystem')).toEqual(['datenbank', 'verwaltungs', 'system']);
    expect(parts('datenbankverwaltungssystem', 2)).toBeUndefined();
    expect(parts('bankrelevanzsystem')).toEqual(['bank', 'relevanz', 'system']);
  });

  it('does not split short words, words with digits or words with a part outside the lexicon', () => {
    expect(parts('datenbank')).toEqual(['daten', 'bank']); // 9 letters, both parts words
    expect(parts('bankfoto')).toBeUndefined(); // "foto" is no word of this lexicon
    expect(parts('gpt4daten')).toBeUndefined();
    expect(parts('system')).toBeUndefined();
  });

  it('splitCompound is decompound with at most two parts', () => {
    for (const w of [
      'relevanzpropagation',
      'bildungsstartup',
      'datenbanksystem',
      'datenbankverwaltungssystem',
    ])
      expect(splitCompound(w, lexicon)?.spans, w).toEqual(decompound(w, lexicon, { maxParts: 2 }));
  });
});

describe('German inflected forms', () => {
  // the stems of base forms only, as a dictionary lists them
  const lexicon = new Set(
    ['erstellen', 'ausführen', 'hochladen', 'installieren', 'problem', 'speichern', 'schreiben', 'paket'].map(
      (w) => stem(w, 'de'),
    ),
  );

  it('guesses the base forms of regular verb forms, participles, zu-infinitives and plurals', () => {
    expect(germanBaseForms('erstellt')).toContain('erstellen');
    expect(germanBaseForms('verwendet')).toContain('verwenden');
    expect(germanBaseForms('installierten')).toContain('installieren');
    expect(germanBaseForms('ausgeführt')).toContain('ausführen');
    expect(germanBaseForms('hinzugefügt')).toContain('hinzufügen');
    expect(germanBaseForms('gespeichert')).toContain('speichern');
    expect(germanBaseForms('hochzuladen')).toContain('hochladen');
    expect(germanBaseForms('probleme')).toContain('problem');
    expect(germanBaseForms('erstellt')).not.toContain('erstellt');
  });

  it('gives the base form term only when the lexicon knows it and not the word itself', () => {
    // Snowball stems none of these to the base form's stem
    for (const [word, base] of [
      ['erstellt', 'erstellen'],
      ['installierten', 'installieren'],
      ['ausgeführt', 'ausführen'],
      ['gespeichert', 'speichern'],
      ['hochzuladen', 'hochladen'],
      ['probleme', 'problem'],
    ] as const) {
      expect(stem(word, 'de'), word).not.toBe(stem(base, 'de'));
      expect(germanLemmaTerm(word, lexicon), word).toBe(`de:${stem(base, 'de')}`);
    }
    expect(germanLemmaTerm('erstellen', lexicon)).toBeUndefined(); // known as it is
    expect(germanLemmaTerm('geschrieben', lexicon)).toBe(`de:${stem('schreiben', 'de')}`); // by its ablaut
    expect(germanLemmaTerm('verwendet', lexicon)).toBeUndefined(); // base form not in the lexicon
    expect(germanLemmaTerm('Paket-Name', lexicon)).toBeUndefined(); // words of letters only
  });

  it('guesses the infinitive of a strong participle by the ablaut series, after "ge" or an inseparable prefix', () => {
    for (const [word, base] of [
      ['geschrieben', 'schreiben'], // ie -> ei
      ['gegriffen', 'greifen'], // i + doubled consonant -> ei
      ['verglichen', 'vergleichen'], // inseparable prefix, no "ge"
      ['gesprochen', 'sprechen'], // o -> e
      ['empfohlen', 'empfehlen'],
      ['geflogen', 'fliegen'], // o -> ie before g, b, t, r
      ['begonnen', 'beginnen'], // o -> i
      ['gefunden', 'finden'], // u -> i
      ['geschlossen', 'schließen'], // oss -> ieß
      ['genommen', 'nehmen'], // listed: the stem changes more than its vowel
      ['angenommen', 'annehmen'], // after a separable prefix
      ['entstanden', 'entstehen'],
      ['gebracht', 'bringen'],
    ] as const)
      expect(germanBaseForms(word), word).toContain(base);
    // a plain word is no participle: no ablaut is guessed without "ge" or an inseparable prefix
    expect(germanBaseForms('norden')).not.toContain('nerden');
    expect(germanBaseForms('boden')).not.toContain('bieden');
    // only the infinitive the lexicon knows is taken ("begonnen" also guesses "begennen", "begiennen")
    const verbs = new Set(['beginnen', 'empfehlen', 'fliegen', 'nehmen'].map((w) => stem(w, 'de')));
    expect(germanLemmaTerm('begonnen', verbs)).toBe(`de:${stem('beginnen', 'de')}`);
    expect(germanLemmaTerm('empfohlen', verbs)).toBe(`de:${stem('empfehlen', 'de')}`);
    expect(germanLemmaTerm('geflogen', verbs)).toBe(`de:${stem('fliegen', 'de')}`);
    expect(germanLemmaTerm('genommen', verbs)).toBe(`de:${stem('nehmen', 'de')}`);
    expect(germanLemmaTerm('gefunden', verbs)).toBeUndefined(); // "finden" is not in this lexicon
  });

  it('reads "gekommen" as "kommen", not as the ablaut guess "kimmen" (Kimme, a word of the dictionary)', () => {
    // the o -> i guess (begonnen -> beginnen) came before the unchanged infinitive, and "kommen" is a stop word
    // (no term), so the guess won: the default dictionary knows 'kimm', and "gekommen" was indexed as de:kimm
    const lexicon = new Set(['kimmen', 'kommen'].map((w) => stem(w, 'de')));
    expect(germanBaseForms('gekommen')[0]).toBe('kommen');
    // a form of a stop word gets no term, as the stop word itself
    expect(germanLemmaTerm('gekommen', lexicon)).toBeUndefined();
    expect(germanLemmaTerm('gekommene', lexicon)).toBeUndefined();
    // with a separable prefix, as before
    expect(germanLemmaTerm('angekommen', new Set([stem('ankommen', 'de')]))).toBe(
      `de:${stem('ankommen', 'de')}`,
    );
  });

  it('takes no ablaut guess the dictionary does not settle: "gelogen" is no form of "liegen", "gelitten" none of "leiten"', () => {
    // the participle vowel o guesses ie and e ("liegen", "legen"), never ü ("lügen"): two known guesses are a coin toss
    const lying = new Set(['liegen', 'legen', 'lügen', 'logen'].map((w) => stem(w, 'de')));
    expect(germanBaseForms('gelogen')).toEqual(expect.arrayContaining(['liegen', 'legen', 'logen']));
    expect(germanLemmaTerm('gelogen', lying)).toBeUndefined();
    expect(germanLemmaTerm('gelogene', lying)).toBeUndefined();
    // one known guess is taken, as before
    expect(germanLemmaTerm('gelogen', new Set([stem('liegen', 'de')]))).toBe(`de:${stem('liegen', 'de')}`);
    // "litten" is listed as "leiden": the i + doubled consonant guess "leiten" is not tried
    const leading = new Set(['leiten', 'leiden'].map((w) => stem(w, 'de')));
    expect(germanBaseForms('gelitten').slice(0, 2)).toEqual(['leiden', 'leiten']);
    expect(germanLemmaTerm('gelitten', leading)).toBe(`de:${stem('leiden', 'de')}`);
    expect(germanLemmaTerm('gelitten', new Set([stem('leiten', 'de')]))).toBeUndefined();
    expect(germanLemmaTerm('erlitten', new Set(['erleiten', 'erleiden'].map((w) => stem(w, 'de'))))).toBe(
      `de:${stem('erleiden', 'de')}`,
    );
    // a core that only ends like the listed one is another verb: "geglitten", "entglitten" are "(ent)gleiten"
    const sliding = new Set(['gleiten', 'entgleiten', 'leiden'].map((w) => stem(w, 'de')));
    expect(germanLemmaTerm('geglitten', sliding)).toBe(`de:${stem('gleiten', 'de')}`);
    expect(germanLemmaTerm('entglitten', sliding)).toBe(`de:${stem('entgleiten', 'de')}`);
    // the unchanged core is no fallback once the series settled it, but still is when the series knows nothing
    expect(germanLemmaTerm('gerufen', new Set([stem('rufen', 'de')]))).toBe(`de:${stem('rufen', 'de')}`);
    expect(germanLemmaTerm('geschnitten', new Set([stem('schneiden', 'de'), stem('schneiten', 'de')]))).toBe(
      `de:${stem('schneiden', 'de')}`,
    );
  });

  it('indexes an inflected word also by its base form, as an extra term that does not lengthen the text', () => {
    const tokens = tokenize('Das Paket wird erstellt.', 'de', { germanLexicon: lexicon });
    expect(tokens.map((t) => [t.term, t.surface, t.extra ?? false])).toEqual([
      [`de:${stem('paket', 'de')}`, 'Paket', false],
      [`de:${stem('erstellt', 'de')}`, 'erstellt', false],
      [`de:${stem('erstellen', 'de')}`, 'erstellt', true],
    ]);
    // without a lexicon nothing is added
    expect(tokenize('Das Paket wird erstellt.', 'de').map((t) => t.term)).toEqual([
      `de:${stem('paket', 'de')}`,
      `de:${stem('erstellt', 'de')}`,
    ]);
  });

  it('translates an inflected question word by its base form, and an English question finds the inflected German text', () => {
    const tr = QueryTranslator.fromStemPairs(`${stem('erstellen', 'de')}\tcreat\t1\npaket\tpackag\t1\n`);
    const q = analyzeQuery('Wie wird das Paket erstellt?', { translator: tr, language: 'de' });
    const created = q.concepts.find((c) => c.word === 'erstellt')!;
    // its own stem, the same letters as an English word (the existing rule for untranslated words), the translation
    expect(created.terms.map((t) => t.term)).toEqual([
      `de:${stem('erstellt', 'de')}`,
      'en:erstellt',
      'en:creat',
    ]);
    // BM25 over a German chunk indexed with the dictionary's lexicon: "create" matches "erstellt"
    const chunk = analyze('Das Paket wird mit dpkg erstellt.', 'de', { germanLexicon: tr.lexicon('de') });
    const other = analyze('Ein Paket ist eine Datei.', 'de', { germanLexicon: tr.lexicon('de') });
    const bm = new Bm25Index([chunk, other]);
    const en = analyzeQuery('How is it created?', { translator: tr, language: 'en' });
    const scores = bm.scoreConcepts(en.concepts);
    expect(scores[0]).toBeGreaterThan(0);
    expect(scores[1]).toBe(0);
  });
});

describe('unsupported languages', () => {
  it('names a language the analyser does not support; English and German (with names in them) pass', () => {
    expect(unsupportedLanguage('Pourquoi Captum a-t-il besoin de la cible ?')).toBe('French');
    expect(unsupportedLanguage('¿Qué es la regla epsilon?')).toBe('Spanish');
    expect(unsupportedLanguage('LRPの epsilon ルールとは何ですか？')).toBe('Japanese');
    expect(unsupportedLanguage('Что такое LRP?')).toBe('Russian (Cyrillic script)');
    expect(unsupportedLanguage('How does DeepLIFT SHAP handle baselines?')).toBeUndefined();
    expect(
      unsupportedLanguage('Wie kann man in Zennit den Nenner einer Regel stabilisieren?'),
    ).toBeUndefined();
    expect(unsupportedLanguage('Captum LRP CRP')).toBeUndefined();
  });
});

describe('false friends in the dictionary', () => {
  it('known pairs translate to what they mean, never to their false friend (real dictionary)', async () => {
    const { loadDefaultTranslator, stemOf, KNOWN_TRANSLATIONS } = await import('../src/node.js');
    const tr = await loadDefaultTranslator();
    expect(tr, '@crp/rag-dictionary-de-en is installed in the workspace').toBeDefined();
    for (const k of KNOWN_TRANSLATIONS) {
      const terms = tr!.translate(stemOf(k.de.toLowerCase(), 'de')!, 'de').map((t) => t.term);
      expect(terms, k.de).not.toContain(k.not);
      expect(terms, k.de).toContain(k.means);
    }
    // exclusion works in both directions (the tiny dictionary has stand -> state and stand -> stand)
    const tiny = QueryTranslator.fromStemPairs(TINY_DICTIONARY, { exclude: [['stand', 'stand']] });
    expect(tiny.translate('stand', 'de').map((t) => t.term)).toEqual(['state']);
    expect(tiny.translate('stand', 'en')).toEqual([]);
    // and the other way: English "fair" no longer finds German "messen"
    expect(tr!.translate('fair', 'en').map((t) => t.term)).not.toContain('mess');
  });
});

describe('German separable verbs in a question (the particle at the end of the clause)', () => {
  const joined = `de:${stem('hochladen', 'de')}`;
  const tr = QueryTranslator.fromStemPairs(
    [
      `${stem('hochladen', 'de')}\tupload\t1`,
      `${stem('laden', 'de')}\tload\t1`,
      `${stem('paket', 'de')}\tpackag\t1`,
      `${stem('hinzufügen', 'de')}\tadd\t1`,
      `${stem('fügen', 'de')}\tjoint\t1`,
      `${stem('regel', 'de')}\trule\t1`,
      `${stem('herausgeben', 'de')}\toutput\t1`,
      `${stem('befehl', 'de')}\tcommand\t1`,
      `${stem('weglegen', 'de')}\tdiscard\t1`,
    ].join('\n'),
  );
  const terms = (question: string, separableVerbs = true) =>
    analyzeQuery(question, { translator: tr, separableVerbs }).concepts.map((c) =>
      c.terms.map((t) => `${t.term}:${t.weight}`),
    );

  it('searches the verb with its particle ("lade ... hoch": upload, not load), the verb as written at half weight', () => {
    expect(terms('Wie lade ich ein Paket hoch?')).toEqual([
      [`${joined}:1`, `de:${stem('lade', 'de')}:0.5`, 'en:hochlad:1', 'en:upload:0.8'],
      ['de:paket:1', 'en:paket:1', 'en:packag:0.8'],
    ]);
    // the strong verb's present tense too ("lädt": hochladen), and a particle before "und" ends its clause
    expect(terms('Wann lädt man das Paket hoch und prüft es?')[0]).toContain('en:upload:0.8');
    // a particle that is no stop word ("hinzu") is read with its verb, not as a word of its own
    expect(terms('Wie füge ich eine Regel hinzu?').map((c) => c[0])).toEqual([
      `de:${stem('hinzufüge', 'de')}:1`,
      `de:${stem('regel', 'de')}:1`,
    ]);
    expect(terms('Wie füge ich eine Regel hinzu?')[0]).toContain('en:add:0.8');
    // the dense side's gloss of the question says it too
    const analyzed = analyzeQuery('Wie lade ich ein Paket hoch?', { translator: tr, separableVerbs: true });
    expect(questionGloss(analyzed.concepts, 'de')).toBe('upload packag');
  });

  it('searches the joined verb where the verb stands when the verb alone is a stop word ("gibt ... heraus")', () => {
    // "gibt" is no term of its own: the particle "heraus" (a term) was dropped and the verb searched nowhere
    const concepts = terms('Was gibt der Befehl heraus?');
    // where the verb stands, before the object
    expect(concepts.map((c) => c[0])).toEqual([
      `de:${stem('herausgeben', 'de')}:1`,
      `de:${stem('befehl', 'de')}:1`,
    ]);
    expect(concepts[0]).toContain('en:output:0.8');
    // no half-weight term for the verb as written: a stop word matches nothing
    expect(concepts[0]!.filter((t) => t.endsWith(':0.5'))).toEqual([]);
  });

  it('joins nothing when the particle does not end the clause or is a capitalised noun', () => {
    expect(terms('Wie lade ich ein Paket auf den hohen Server?')[0]).toEqual([
      `de:${stem('lade', 'de')}:1`,
      'en:lade:1',
      'en:load:0.8',
    ]);
    expect(terms('Wie lade ich das Paket? Hoch oben steht der Server.')[0]![0]).toBe(
      `de:${stem('lade', 'de')}:1`,
    );
    // "weg" small is the particle (weglegen, discard), "Weg" the noun (way) ending a phrase
    expect(terms('Wie lege ich das Paket weg?')[0]).toContain('en:discard:0.8');
    expect(terms('Wie lege ich das Paket auf den Weg?').flat()).not.toContain('en:discard:0.8');
  });

  it('without the option (a passage analysed for the answer metrics) a verb keeps its own sense', () => {
    expect(terms('Wie lade ich ein Paket hoch?', false)[0]).toEqual([
      `de:${stem('lade', 'de')}:1`,
      'en:lade:1',
      'en:load:0.8',
    ]);
  });
});
