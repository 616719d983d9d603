import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FittedMap,
  HashEmbedding,
  RagEngine,
  renderEmbeddingMapSvg,
  renderSentenceHeatmapSvg,
} from '../src/node.js';
import { writeSmallCorpus } from './helpers/corpus.js';
import { tempDir } from './helpers/temp-dir.js';

let root = '';
let cleanup: () => Promise<void> = async () => {};
let engine: RagEngine;
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir());
  await writeSmallCorpus(path.join(root, 'docs'));
  engine = await RagEngine.open({
    dir: path.join(root, 'index'),
    embedding: new HashEmbedding(),
    generator: null,
  });
  await engine.update(path.join(root, 'docs'));
});
afterAll(() => cleanup());

describe('retrieval explanations', () => {
  it('returns an embedding map, sentence heatmaps and keyword overlap as data and SVG', async () => {
    const a = await engine.ask('Which rule is used for convolutional layers?', { topK: 2 });
    const e = a.explanation!;
    const map = e.embeddingMap!;
    expect(map.points).toHaveLength(engine.index.chunks.length);
    expect(
      map.points
        .filter((p) => p.kind === 'retrieved')
        .map((p) => p.source)
        .sort(),
    ).toEqual([1, 2]);
    expect(map.points.some((p) => p.kind === 'neighbor')).toBe(true);
    expect(Number.isFinite(map.query.x) && Number.isFinite(map.query.y)).toBe(true);

    const top = e.sentenceHeatmaps[0]!;
    expect(top.sentences.length).toBeGreaterThan(0);
    const best = [...top.sentences].sort((x, y) => y.score - x.score)[0]!;
    expect(best.text).toContain('convolutional layers');
    for (const s of top.sentences) expect(s.score).toBeGreaterThanOrEqual(0);

    const kw = e.keywords[0]!;
    expect(kw.shared.map((k) => k.word)).toEqual(expect.arrayContaining(['rule', 'convolutional']));
    expect(kw.shared.every((k) => k.weight > 0)).toBe(true);
    expect(kw.shared.map((k) => k.weight)).toEqual([...kw.shared.map((k) => k.weight)].sort((x, y) => y - x));

    expect(e.svg.embeddingMap).toMatch(/^<svg[^>]*class="embedding-map"/);
    expect(e.svg.embeddingMap).toContain('class="query"');
    expect(e.svg.sentenceHeatmaps[0]).toContain('convolutional layers');
    expect(e.svg.keywords[0]).toContain('convolutional');
  });

  it("the page shows a source's footnote as one", async () => {
    const { APP_JS } = await import('../src/node/page.js');
    // the page's own functions, taken out of its script (they need no document)
    const esc = /^const esc = .*$/m.exec(APP_JS)![0];
    const body = /^function sourceBody\(s\) \{[\s\S]*?^\}$/m.exec(APP_JS)![0];
    const sourceBody = new Function(`${esc}\n${body}\nreturn sourceBody;`)() as (s: unknown) => string;
    const text = 'The tool writes the archive.\n\nOnly <when> asked.';
    expect(
      sourceBody({
        text,
        blocks: [
          { kind: 'paragraph', start: 0, end: 28 },
          { kind: 'note', start: 30, end: text.length },
        ],
      }),
    ).toBe(
      '<p>The tool writes the archive.</p><p class="footnote"><span class="footnote-label">Footnote:</span> Only &lt;when&gt; asked.</p>',
    );
  });

  it('a sentence heatmap shows a footnote as one', () => {
    const svg = renderSentenceHeatmapSvg({
      source: 1,
      chunkId: 'c',
      citation: '[a.pdf, p. 2]',
      sentences: [
        {
          text: 'Only when asked to.',
          start: 0,
          end: 19,
          kind: 'note',
          score: 0,
          dense: 0,
          lexical: 0,
          novelty: 1,
        },
      ],
    });
    expect(svg).toMatch(/<text x="10"[^>]*font-style="italic"[^>]*>Footnote: Only when asked to\.<\/text>/);
  });

  it('a sentence heatmap shows a code block with its lines and indentation, prose wrapped by words', () => {
    const sentence = (text: string, kind: 'code' | 'paragraph') =>
      ({ text, start: 0, end: text.length, kind, score: 0.5, dense: 0.5, lexical: 0.5, novelty: 1 }) as const;
    const svg = renderSentenceHeatmapSvg(
      {
        source: 1,
        chunkId: 'c',
        citation: '[setup.md]',
        sentences: [
          sentence('Run the training with the following command:', 'paragraph'),
          sentence(
            `python train.py --model small \\\n    --epochs 3 && echo "<done>"\n\n# ${'x'.repeat(100)}`,
            'code',
          ),
        ],
      },
      { width: 400 },
    );
    const texts = [...svg.matchAll(/<text x="10"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    const code = [...svg.matchAll(/<text x="10"[^>]*font-family="monospace"[^>]*>([^<]*)<\/text>/g)].map(
      (m) => m[1],
    );
    expect(texts[0]).toBe('Run the training with the following command:');
    // each line of the block on a line of its own, the indentation kept and escaped; the empty line kept; a line
    // longer than the heatmap's 50 characters cut, not reflowed
    expect(code).toEqual([
      'python train.py --model small \\',
      '    --epochs 3 &amp;&amp; echo &quot;&lt;done&gt;&quot;',
      '',
      `# ${'x'.repeat(48)}`,
      'x'.repeat(50),
      'x'.repeat(2),
    ]);
  });

  it('keyword overlap names words found only through their translation, and never shows stop words', async () => {
    const a = await engine.ask('Why are embeddings stored in a vector database?', {
      topK: 1,
      explain: { embeddingMap: false },
    });
    const kw = a.explanation!.keywords[0]!;
    expect(a.sources[0]!.file).toBe('sub/vektor.md');
    const stored = kw.shared.find((k) => k.word === 'stored')!;
    expect(stored).toMatchObject({ translated: true, stems: ['de:speich'] });
    expect([...kw.shared.map((k) => k.word), ...kw.missing].map((w) => w.toLowerCase())).not.toContain('why');
    expect(a.explanation!.svg.keywords[0]).toContain('⇄ stored');
  });

  it('the map is deterministic for a seed and rejects epochs that are not a multiple of 3', async () => {
    const vectors = await new HashEmbedding({ dimensions: 16 }).embed(
      Array.from({ length: 12 }, (_, i) => `document ${i} about topic ${i % 3} and word${i}`),
    );
    const chunks = vectors.map((_, i) => ({
      id: `c${i}`,
      text: 't',
      metadata: { file: `f${i}.md`, title: 't', startChar: 0, endChar: 1, language: 'en' as const },
    }));
    const a = FittedMap.fit(vectors, { seed: 7, nEpochs: 30 }).project(chunks, vectors, vectors[0]!, ['c0']);
    const b = FittedMap.fit(vectors, { seed: 7, nEpochs: 30 }).project(chunks, vectors, vectors[0]!, ['c0']);
    expect(a).toEqual(b);
    expect(renderEmbeddingMapSvg(a)).toContain('<circle');
    expect(() => FittedMap.fit(vectors, { nEpochs: 100 })).toThrow(/multiple of 3/);
  });
});

describe('source numbers on the map', () => {
  it('sources at the same spot share one label; labels overlap no other label, no source point and not the star', async () => {
    const { placeSourceLabels } = await import('../src/index.js');
    const points = [
      { x: 100, y: 100, source: 3 },
      { x: 101, y: 100, source: 1 }, // on top of source 3
      { x: 112, y: 102, source: 2 }, // right next to them
      { x: 120, y: 95, source: 4 },
      { x: 300, y: 200, source: 5 },
    ];
    const labels = placeSourceLabels(points, { x: 130, y: 100 }, 640, 440);
    expect(labels.map((l) => l.text)).toEqual(['1, 3', '2', '4', '5']);
    const overlap = (a: (typeof labels)[0], b: { x: number; y: number; width: number; height: number }) =>
      a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
    for (const [i, a] of labels.entries()) {
      for (const b of labels.slice(i + 1)) expect(overlap(a, b), `${a.text} / ${b.text}`).toBe(false);
      for (const p of points)
        expect(overlap(a, { x: p.x - 6, y: p.y - 6, width: 12, height: 12 })).toBe(false);
      expect(overlap(a, { x: 125, y: 95, width: 10, height: 10 })).toBe(false);
      expect(a.x).toBeGreaterThanOrEqual(0);
      expect(a.x + a.width).toBeLessThanOrEqual(640);
    }
    // a lone source keeps its label right beside it, without a leader line
    expect(labels[3]!.x).toBe(309);
    expect(labels[3]!.leader).toBeUndefined();
    // unless a nearest chunk not retrieved (an orange point) sits there: then the next free place, left of it
    const moved = placeSourceLabels(points, { x: 130, y: 100 }, 640, 440, [{ x: 312, y: 200 }]);
    expect(moved[3]!.x + moved[3]!.width).toBe(300 - 9);
    expect(overlap(moved[3]!, { x: 306, y: 194, width: 12, height: 12 })).toBe(false);
  });
});

describe('the map by meaning', () => {
  const pairs = 'regel\trule\t1\nschicht\tlayer\t1\n';
  const chunkTerms = [['en:rule', 'en:rule', 'en:layer'], ['de:regel', 'de:schicht'], ['en:cat']];

  it('puts a German chunk on the English concepts of its dictionary translations (TF-IDF, hand-computed)', async () => {
    const { MeaningSpace, QueryTranslator, dot } = await import('../src/index.js');
    const space = new MeaningSpace(chunkTerms, QueryTranslator.fromStemPairs(pairs));
    const [a, b, c] = space.vectors as [Float32Array, Float32Array, Float32Array];
    // A = {rule: 2, layer: 1}, B = {rule: 1, layer: 1}: rule and layer share one idf, so cosine =
    // (ln3 ln2 + ln2 ln2) / (sqrt(ln3^2 + ln2^2) sqrt(2) ln2) = (ln3 + ln2) / (sqrt(ln3^2 + ln2^2) sqrt(2))
    const ln2 = Math.log(2);
    const ln3 = Math.log(3);
    expect(dot(a, b)).toBeCloseTo((ln3 + ln2) / (Math.sqrt(ln3 * ln3 + ln2 * ln2) * Math.SQRT2), 6);
    expect(dot(a, c)).toBe(0);
    expect(dot(a, a)).toBeCloseTo(1, 6);
    // without the dictionary the German chunk shares nothing with the English one
    const plain = new MeaningSpace(chunkTerms);
    expect(dot(plain.vectors[0]!, plain.vectors[1]!)).toBe(0);
  });

  it('oneLanguageWeight weighs concepts only one language brings in (hand-computed)', async () => {
    const { MeaningSpace, QueryTranslator, dot } = await import('../src/index.js');
    // "cat" only English chunks have, "katz" (not in the dictionary) only German ones; "rule" both (through regel)
    const terms = [
      ['en:rule', 'en:cat'],
      ['de:regel', 'de:katz'],
    ];
    const translator = QueryTranslator.fromStemPairs(pairs);
    const ln2 = Math.log(2); // idf of rule (in 2 of 2 chunks) and log1p(1) of every count
    const ln3 = Math.log(3); // idf of cat and katz (1 of 2)
    const all = new MeaningSpace(terms, translator);
    expect(dot(all.vectors[0]!, all.vectors[1]!)).toBeCloseTo((ln2 * ln2) / (ln2 * ln2 + ln3 * ln3), 6);
    const half = new MeaningSpace(terms, translator, { oneLanguageWeight: 0.5 });
    const c = 0.5 * ln3;
    expect(dot(half.vectors[0]!, half.vectors[1]!)).toBeCloseTo((ln2 * ln2) / (ln2 * ln2 + c * c), 6);
    // left out, the two chunks are the concept "rule" alone
    const aligned = new MeaningSpace(terms, translator, { oneLanguageWeight: 0 });
    expect(dot(aligned.vectors[0]!, aligned.vectors[1]!)).toBeCloseTo(1, 6);
    // a chunk of one-language concepts only keeps them rather than become the zero vector
    const lone = new MeaningSpace([...terms, ['de:katz']], translator, { oneLanguageWeight: 0 });
    expect(dot(lone.vectors[2]!, lone.vectors[2]!)).toBeCloseTo(1, 6);
    expect(dot(lone.vectors[2]!, lone.vectors[0]!)).toBe(0);
  });

  it('places a German question on the same concepts as an English chunk about it', async () => {
    const { MeaningSpace, QueryTranslator, analyzeQuery, dot } = await import('../src/index.js');
    const translator = QueryTranslator.fromStemPairs(pairs);
    const space = new MeaningSpace(chunkTerms, translator);
    const q = space.embedQuery(analyzeQuery('Welche Regel gilt?', { language: 'de', translator }));
    // the question is the concept "rule" alone (gilt is not in the dictionary nor in any chunk)
    expect(dot(q, space.vectors[1]!)).toBeCloseTo(1 / Math.SQRT2, 6);
    expect(dot(q, space.vectors[0]!)).toBeCloseTo(Math.log(3) / Math.hypot(Math.log(3), Math.log(2)), 6);
    expect(dot(q, space.vectors[2]!)).toBe(0);
  });

  it('englishConcepts: a German stem through its own entry, its base form, its compound parts, else as a loan word', async () => {
    const { englishConcepts, QueryTranslator, stem } = await import('../src/index.js');
    const tr = QueryTranslator.fromStemPairs(
      ['regel\trule\t1', 'regel\tregul\t0.5', 'vektor\tvector\t1', 'datenbank\tdatabas\t1', 'verwend\tuse\t1']
        .concat(['einbett\tembed\t1', 'einbett\tbed\t1', 'rag\trage\t1'])
        .join('\n'),
    );
    // weights of one word sum to 1: rule 1/1.5, regul 0.5/1.5
    expect(englishConcepts('regel', tr)).toEqual({
      route: 'dictionary',
      concepts: [
        ['rule', 1 / 1.5],
        ['regul', 0.5 / 1.5],
      ],
    });
    // "verwendet": Snowball's stem is the word itself; its base form "verwenden" is in the dictionary
    expect(englishConcepts(stem('verwendet', 'de'), tr)).toEqual({
      route: 'base-form',
      concepts: [['use', 1]],
    });
    // each part of a compound is half of the word
    expect(englishConcepts(stem('vektordatenbanken', 'de'), tr)).toEqual({
      route: 'compound',
      concepts: [
        ['vector', 0.5],
        ['databas', 0.5],
      ],
    });
    // a word no dictionary knows is stemmed as English, as an English text indexes it
    expect(englishConcepts(stem('retrieval', 'de'), tr)).toEqual({
      route: 'loan-word',
      concepts: [['retriev', 1]],
    });
    // with the English texts' stems: their translation rather than one they never use ...
    const used = new Set(['embed', 'rag', 'vector']);
    expect(englishConcepts('einbett', tr, { used }).concepts).toEqual([['embed', 1]]);
    // ... and a word they use as it is rather than a translation they do not use ("RAG" is no "rage")
    expect(englishConcepts('rag', tr, { used })).toEqual({ route: 'loan-word', concepts: [['rag', 1]] });
    expect(englishConcepts('rag', tr).concepts).toEqual([['rage', 1]]);
    // a compound with a name splits by the text's own words ("Vektor-Sammlung" joined: vektorsammlung)
    expect(englishConcepts('vektorsammlung', tr).route).toBe('loan-word');
    const sammlung = stem('sammlung', 'de'); // a stem of the text, in no dictionary: it stays as spelt
    expect(englishConcepts('vektorsammlung', tr, { context: new Set([sammlung]) })).toEqual({
      route: 'compound',
      concepts: [
        ['vector', 0.5],
        [stem(sammlung, 'en'), 0.5],
      ],
    });
  });

  it("documentCentering takes a share of its document's mean off each chunk (hand-computed)", async () => {
    const { MeaningSpace, dot } = await import('../src/index.js');
    // two chunks of document A on orthogonal concepts x and y, one of document B
    const terms = [['en:x'], ['en:y'], ['en:z']];
    const documents = ['a', 'a', 'b'];
    const plain = new MeaningSpace(terms, undefined, { documents, documentCentering: 0 });
    expect(dot(plain.vectors[0]!, plain.vectors[1]!)).toBe(0);
    // share 1: x - (x + y)/2 = (x - y)/2 and (y - x)/2 point opposite ways
    const full = new MeaningSpace(terms, undefined, { documents, documentCentering: 1 });
    expect(dot(full.vectors[0]!, full.vectors[1]!)).toBeCloseTo(-1, 6);
    // share 0.5: x - (x + y)/4 = (3x - y)/4, so cosine (3x - y).(3y - x) / 10 = -6 / 10
    const half = new MeaningSpace(terms, undefined, { documents });
    expect(dot(half.vectors[0]!, half.vectors[1]!)).toBeCloseTo(-0.6, 6);
    expect(dot(half.vectors[0]!, plain.vectors[0]!)).toBeCloseTo(3 / Math.sqrt(10), 6);
    // a document of one chunk keeps its direction (at share 1 it would be the zero vector)
    expect(dot(full.vectors[2]!, plain.vectors[2]!)).toBeCloseTo(1, 6);
    // without documents nothing is centred
    expect(new MeaningSpace(terms).vectors).toEqual(plain.vectors);
  });

  it("centred by document, a German chunk is nearest the English chunk on its topic, not its own document's other chunk", async () => {
    const { MeaningSpace, QueryTranslator, dot } = await import('../src/index.js');
    const translator = QueryTranslator.fromStemPairs('regel\trule\t1\nvektor\tvector\t1');
    // every chunk repeats its document's three title words (as the analysed text with section names does)
    const en = ['en:zennit', 'en:guid', 'en:chapter'];
    const de = ['de:handbuch', 'de:kapitel', 'de:einleitung'];
    const terms = [
      [...en, 'en:rule'],
      [...en, 'en:vector'],
      [...de, 'de:regel'],
      [...de, 'de:vektor'],
    ];
    const documents = ['en.md', 'en.md', 'de.md', 'de.md'];
    // every concept is in 2 of 4 chunks (one idf), so with unit weights t (3 title concepts), r and v:
    // uncentred, chunk 2 = t + r shares 3 with chunk 3 = t + v and 1 with chunk 0 (rule)
    const plain = new MeaningSpace(terms, translator, { documents, documentCentering: 0 });
    expect(dot(plain.vectors[2]!, plain.vectors[3]!)).toBeCloseTo(3 / 4, 6);
    expect(dot(plain.vectors[2]!, plain.vectors[0]!)).toBeCloseTo(1 / 4, 6);
    // centred by half the document mean t + (r + v)/2: 0.5 t + 0.75 r - 0.25 v (norm^2 0.75 + 0.625 = 1.375);
    // with chunk 3 (0.5 t + 0.75 v - 0.25 r): 0.75 - 0.375 = 0.375; with chunk 0 (0.5 t' + 0.75 r - 0.25 v): 0.625
    const centred = new MeaningSpace(terms, translator, { documents });
    expect(dot(centred.vectors[2]!, centred.vectors[3]!)).toBeCloseTo(0.375 / 1.375, 6);
    expect(dot(centred.vectors[2]!, centred.vectors[0]!)).toBeCloseTo(0.625 / 1.375, 6);
    // a question is compared with the uncentred vectors
    expect(centred.questionVectors).toEqual(plain.vectors);
  });

  it('MeaningSpace.ofTexts analyses the texts without the extra terms of search, centred by document', async () => {
    const { MeaningSpace, analyze, dot } = await import('../src/index.js');
    const texts = [
      { text: 'The epsilon rule stabilises the denominator.', language: 'en' as const, document: 'a.md' },
      { text: 'Die Epsilon-Regel stabilisiert den Nenner.', language: 'de' as const, document: 'b.md' },
      { text: 'Composites map rules to layers.', language: 'en' as const, document: 'a.md' },
    ];
    const space = MeaningSpace.ofTexts(texts);
    const same = new MeaningSpace(
      texts.map((t) => analyze(t.text, t.language)),
      undefined,
      { documents: ['a.md', 'b.md', 'a.md'] },
    );
    expect(space.vectors).toEqual(same.vectors);
    expect(dot(space.vectors[0]!, space.vectors[0]!)).toBeCloseTo(1, 6);
  });

  it('MeaningSpace.ofTexts keeps an acronym in a German text as English text indexes it, not as a translation (hand-computed)', async () => {
    const { MeaningSpace, QueryTranslator, analyzeQuery, dot } = await import('../src/index.js');
    // German "Rage" is English "fury" (stem furi); once an English text used "fury", German "RAG" became it
    const translator = QueryTranslator.fromStemPairs('rag\tfuri\t1\nvektor\tvector\t1\n');
    const texts = [
      { text: 'RAG stores vectors.', language: 'en' as const, document: 'a.md' },
      { text: 'Fury grew.', language: 'en' as const, document: 'b.md' },
      { text: 'RAG speichert Vektoren.', language: 'de' as const, document: 'c.md' },
    ];
    const space = MeaningSpace.ofTexts(texts, translator);
    const [a, b, c] = space.questionVectors as [Float32Array, Float32Array, Float32Array];
    // a = {rag, store, vector}, c = {rag, speichert (a loan word), vector}: rag and vector in 2 of 3 chunks
    const shared = Math.log(1 + 3 / 2);
    const own = Math.log(1 + 3);
    expect(dot(a, c)).toBeCloseTo((2 * shared * shared) / (2 * shared * shared + own * own), 6);
    expect(dot(b, c)).toBe(0);
    // so is the acronym of a German question; a heading in capitals ("VEKTOREN") is still translated
    const q = space.embedQuery(analyzeQuery('Wozu braucht RAG Vektoren?', { language: 'de', translator }));
    expect(dot(q, b)).toBe(0);
    expect(dot(q, a)).toBeGreaterThan(0.5);
    const heading = MeaningSpace.ofTexts(
      [...texts, { text: 'VEKTOREN', language: 'de', document: 'd.md' }],
      translator,
    );
    expect(dot(heading.questionVectors[3]!, heading.questionVectors[0]!)).toBeGreaterThan(0);
  });

  it('meaningTerms: words of capitals set together with a long one are German words ("NEUE", "NAME"), acronyms stay names', async () => {
    const { meaningTerms } = await import('../src/explain/meaning-space.js');
    const { capitalsSpans } = await import('../src/text/query.js');
    // headings and a form's labels of the Debian guide: every word is the German word, translated like any other
    expect(meaningTerms('LEITFADEN FÜR NEUE PAKETBETREUER', 'de')).toEqual([
      'de:leitfad',
      'de:neu',
      'de:paketbetreu',
    ]);
    expect(meaningTerms('VERSIONSGESCHICHTE NUMMER DATUM NAME', 'de')).toEqual([
      'de:versionsgeschicht',
      'de:numm',
      'de:datum',
      'de:nam',
    ]);
    expect(meaningTerms('VERFASST DURCH AUTOR', 'de')).toEqual(['de:verfasst', 'de:autor']);
    // acronyms among ordinary words, or next to other short ones, keep the term English text gives them
    expect(meaningTerms('RAG und LRP nutzen CRP, ONNX und die GPU.', 'de')).toEqual([
      'en:rag',
      'en:lrp',
      'de:nutz',
      'en:crp',
      'en:onnx',
      'en:gpu',
    ]);
    expect(meaningTerms('Lizenz: GNU GPL', 'de')).toEqual(['de:lizenz', 'en:gnu', 'en:gpl']);
    // a lone word of capitals cannot be told from an acronym: it stays a name
    expect(meaningTerms('AUTOR', 'de')).toEqual(['en:autor']);
    expect(capitalsSpans('Siehe VERSIONSGESCHICHTE NAME; RAG LLM und GNU GPL')).toEqual([[6, 29]]);
  });

  it('MeaningSpace.ofTexts leaves out the English function words of German text ("the", "for" of a quotation or code)', async () => {
    const { MeaningSpace, analyze, stem } = await import('../src/index.js');
    const texts = [
      {
        text: 'Das Modell heißt „Bag of Words“: # load the model and run it',
        language: 'de' as const,
        document: 'a.md',
      },
      // capitalised at the start of a quotation too; never in capitals ("IT"), nor a German noun ("die Not", "These")
      { text: '„The model“ für IT in der Not: These', language: 'de' as const, document: 'b.md' },
      // English text keeps its own stop list only: "die" is an English word there
      { text: 'the die', language: 'en' as const, document: 'c.md' },
    ];
    const de = (w: string) => `de:${stem(w, 'de')}`;
    const expected = [
      [de('modell'), de('bag'), de('words'), de('load'), de('model'), de('run')],
      [de('model'), de('it'), de('not'), de('these')],
      [`en:${stem('die', 'en')}`],
    ];
    const space = MeaningSpace.ofTexts(texts);
    const same = new MeaningSpace(expected, undefined, { documents: ['a.md', 'b.md', 'c.md'] });
    expect(space.vectors).toEqual(same.vectors);
    // the search index keeps them (dropped there they cost answers and won none)
    expect(analyze(texts[0]!.text, 'de')).toContain(de('the'));
  });

  it("languageCentering takes a share of its language's mean off each chunk, and off a question of that language (hand-computed)", async () => {
    const { MeaningSpace, dot } = await import('../src/index.js');
    // German chunks x + g and y + g share g (a German house word); the English chunk is x alone
    const terms = [['en:x'], ['de:x', 'de:g'], ['de:y', 'de:g']];
    const languages = ['en', 'de', 'de'];
    const plain = new MeaningSpace(terms, undefined, { languages });
    // without a dictionary de:x is the concept x too; every concept is in 2 of 3 chunks but y (1 of 3)
    const idf2 = Math.log(1 + 3 / 2);
    const idf1 = Math.log(1 + 3);
    // chunk 1 = (x + g)/sqrt(2), chunk 2 = a y + b g with a, b its idf weights normalised
    const n2 = Math.hypot(idf1, idf2);
    const [a, b] = [idf1 / n2, idf2 / n2];
    // centred fully by language: chunk 1 - mean = (x + g)/sqrt(2) - ((x + g)/sqrt(2) + a y + b g)/2
    //   = x/(2 sqrt 2) + g (1/sqrt(2) - b)/2 - a y/2; the English chunk is alone in its language: kept
    const full = new MeaningSpace(terms, undefined, { languages, languageCentering: 1 });
    const c1 = [1 / (2 * Math.SQRT2), (1 / Math.SQRT2 - b) / 2, -a / 2]; // along x, g, y
    expect(dot(full.vectors[1]!, full.vectors[0]!)).toBeCloseTo(c1[0]! / Math.hypot(...c1), 6);
    expect(dot(full.vectors[0]!, plain.vectors[0]!)).toBeCloseTo(1, 6);
    // uncentred, chunk 1 and the English chunk share x only: 1/sqrt(2)
    expect(dot(plain.vectors[1]!, plain.vectors[0]!)).toBeCloseTo(1 / Math.SQRT2, 6);
    // a German question x + g is centred by the German mean as the chunks are: it becomes chunk 1's vector
    const q = plain.questionVectors[1]!;
    expect(dot(full.centerByLanguage(q, 'de'), full.vectors[1]!)).toBeCloseTo(1, 6);
    // an English question is centred by the English mean (itself: the fallback keeps it), unknown: unchanged
    expect(full.centerByLanguage(plain.vectors[0]!, 'en')).toEqual(plain.vectors[0]);
    expect(plain.centerByLanguage(q, 'de')).toBe(q);
  });

  it('similarities() are the dot products of the centred vectors, computed from the sparse form', async () => {
    const { MeaningSpace, QueryTranslator, dot } = await import('../src/index.js');
    const translator = QueryTranslator.fromStemPairs('regel\trule\t1\nvektor\tvector\t1\nbank\tbank\t1');
    const terms = [
      ['en:rule', 'en:epsilon', 'en:zennit'],
      ['en:vector', 'en:zennit', 'en:zennit'],
      ['de:regel', 'de:handbuch'],
      ['de:vektor', 'de:bank', 'de:handbuch'],
      ['en:lone'],
    ];
    const documents = ['a', 'a', 'b', 'b', 'c'];
    const languages = ['en', 'en', 'de', 'de', 'en'];
    for (const options of [
      {},
      { documentCentering: 0.5 },
      { languageCentering: 1 },
      { languageCentering: 0.5, documentCentering: 0.25 },
      { languageCentering: 1, documentCentering: 1 },
    ]) {
      const space = new MeaningSpace(terms, translator, { documents, languages, ...options });
      const n = terms.length;
      const gram = space.similarities();
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++)
          expect(gram[i * n + j]).toBeCloseTo(dot(space.vectors[i]!, space.vectors[j]!), 6);
      // of a subset, in its order
      const some = [4, 1, 2];
      const part = space.similarities(some);
      some.forEach((i, a) => {
        some.forEach((j, b) => {
          expect(part[a * 3 + b]).toBeCloseTo(gram[i * n + j]!, 7);
        });
      });
    }
  });

  it("the map's start from a space's similarities is the start from its vectors", async () => {
    const { MeaningSpace } = await import('../src/index.js');
    const { principalCoordinates, principalCoordinatesOfGram } = await import(
      '../src/explain/embedding-map.js'
    );
    const { mulberry32 } = await import('@crp/common');
    const terms = Array.from({ length: 14 }, (_, i) => [
      `en:t${i % 4}`,
      `en:u${i % 3}`,
      ...Array.from({ length: 1 + (i % 5) }, () => (i % 2 ? 'en:odd' : 'de:gerade')),
      `de:d${Math.floor(i / 5)}`,
      `en:own${i}`,
    ]);
    const documents = terms.map((_, i) => `doc${Math.floor(i / 5)}`);
    const languages = terms.map((_, i) => (i % 2 ? 'en' : 'de'));
    const space = new MeaningSpace(terms, undefined, { documents, languages, languageCentering: 1 });
    const fromSparse = principalCoordinatesOfGram(space.similarities(), 14, mulberry32(1), languages);
    const fromRows = principalCoordinates(
      space.vectors.map((v) => Array.from(v)),
      mulberry32(1),
      languages,
    );
    fromSparse.forEach((xy, i) => {
      expect(xy[0]).toBeCloseTo(fromRows[i]![0]!, 5);
      expect(xy[1]).toBeCloseTo(fromRows[i]![1]!, 5);
    });
  });

  it('the engine fits its map in the meaning space unless told to use the embeddings', async () => {
    const a = await engine.ask('Why are embeddings stored in a vector database?', { topK: 2 });
    expect(a.explanation!.embeddingMap!.space).toBe('meaning');
    const dense = new RagEngine(engine.index, { embeddingMap: { space: 'embedding' } });
    const b = await dense.ask('Why are embeddings stored in a vector database?', { topK: 2 });
    expect(b.explanation!.embeddingMap!.space).toBe('embedding');
    expect(b.explanation!.embeddingMap!.points.map((p) => p.chunkId).sort()).toEqual(
      a.explanation!.embeddingMap!.points.map((p) => p.chunkId).sort(),
    );
  });
});

describe('source numbers on a crowded map', () => {
  it('ten sources around the star in a 24 px square: every number shown once, no label overlaps another, a point or the star', async () => {
    const { placeSourceLabels } = await import('../src/index.js');
    // by meaning, a question's sources lie together: the crowded case is the usual one now
    const points = Array.from({ length: 10 }, (_, i) => ({
      x: 200 + ((i * 7) % 24),
      y: 150 + ((i * 11) % 24),
      source: i + 1,
    }));
    const star = { x: 212, y: 162 };
    const labels = placeSourceLabels(points, star, 640, 440);
    const shown = labels.flatMap((l) => l.text.split(', ').map(Number)).sort((a, b) => a - b);
    expect(shown).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    type Box = { x: number; y: number; width: number; height: number };
    const overlap = (a: Box, b: Box) =>
      a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
    for (const [i, a] of labels.entries()) {
      for (const b of labels.slice(i + 1)) expect(overlap(a, b), `${a.text} / ${b.text}`).toBe(false);
      for (const p of points)
        expect(overlap(a, { x: p.x - 6, y: p.y - 6, width: 12, height: 12 })).toBe(false);
      expect(overlap(a, { x: star.x - 9, y: star.y - 9, width: 18, height: 18 })).toBe(false);
      expect(a.x >= 0 && a.y >= 0 && a.x + a.width <= 640 && a.y + a.height <= 440).toBe(true);
      // a label moved away from its point is tied to it by a leader line
      if (a.leader) expect(Math.hypot(a.leader.x - a.x, a.leader.y - a.y)).toBeGreaterThan(0);
    }
  });
});

describe('source numbers in a crowded corner of the drawn map', () => {
  it('ten sources with the star in the bottom-left corner: every number shown, none on the legend row', () => {
    // 40 chunks spread over the plane, the question's ten sources packed into its bottom-left corner (UMAP puts
    // a topic's chunks at the edge of the map as often as in its middle)
    const points = [
      ...Array.from({ length: 40 }, (_, i) => ({
        chunkId: `o${i}`,
        file: 'o.md',
        x: (i * 37) % 100,
        y: (i * 53) % 100,
        kind: 'other' as const,
        similarity: 0,
      })),
      ...Array.from({ length: 10 }, (_, i) => ({
        chunkId: `s${i}`,
        file: 's.md',
        x: (i * 7) % 4,
        y: (i * 3) % 4,
        kind: 'retrieved' as const,
        source: i + 1,
        similarity: 0.5,
      })),
    ];
    const svg = renderEmbeddingMapSvg(
      { points, query: { x: 1.5, y: 1.5 }, seed: 1, method: 'umap', space: 'meaning' },
      { width: 640, height: 440 },
    );
    const labelsOf = (group: string) => [
      ...svg
        .split(`<g class="${group}">`)[1]!
        .split('</g>')[0]!
        .matchAll(
          /<text class="source-label" x="([\d.]+)" y="([\d.]+)" font-size="(\d+)"[^>]*>([^<]+)<\/text>/g,
        ),
    ];
    // the page shows the 11 px set, or below 600 px (where the map is drawn at about 0.6 of its size) the 20 px one
    expect(svg).toMatch(/@media \(max-width:600px\)\{\.embedding-map \.labels-small\{display:none\}/);
    for (const [group, size] of [
      ['labels-small', 11],
      ['labels-large', 20],
    ] as const) {
      const labels = labelsOf(group);
      const shown = labels.flatMap((m) => m[4]!.split(', ').map(Number)).sort((a, b) => a - b);
      expect(shown, group).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      // the legend's symbols start 24 px above the bottom (translate(24, 426), a star reaching 10 px up); a
      // label's text is drawn 9/11 of its size below its box's top and the box is its size high
      for (const m of labels) {
        expect(Number(m[3]), group).toBe(size);
        expect(Number(m[2]) - (9 * size) / 11 + size, m[4]).toBeLessThanOrEqual(440 - 24 + 0.01);
      }
      // no two boxes of a set overlap (width 6.5 px a character + 2, scaled with the size)
      const boxes = labels.map((m) => {
        const x = Number(m[1]);
        const y = Number(m[2]) - (9 * size) / 11;
        return { x, y, w: ((6.5 * m[4]!.length + 2) * size) / 11, h: size };
      });
      boxes.forEach((a, i) => {
        boxes.slice(i + 1).forEach((b) => {
          const overlap =
            a.x < b.x + b.w - 0.01 &&
            b.x < a.x + a.w - 0.01 &&
            a.y < b.y + b.h - 0.01 &&
            b.y < a.y + a.h - 0.01;
          expect(overlap, `${group}: ${JSON.stringify(a)} ${JSON.stringify(b)}`).toBe(false);
        });
      });
    }
  });
});

describe('where the map starts (principal components)', () => {
  it('points on a line: the first component is the line, scaled so the largest coordinate is 10 (hand-computed)', async () => {
    const { principalCoordinates } = await import('../src/explain/embedding-map.js');
    const { mulberry32 } = await import('@crp/common');
    // rows t * (1, 2, 0) + (3, 3, 3): centred, the projection on (1, 2, 0)/sqrt(5) is t sqrt(5); the largest,
    // 2 sqrt(5), becomes 10, so t maps to 5t; nothing varies across the line, so the second coordinate is 0
    const rows = [-2, -1, 0, 1, 2].map((t) => [t + 3, 2 * t + 3, 3]);
    const xy = principalCoordinates(rows, mulberry32(1));
    const sign = Math.sign(xy[4]![0]!);
    xy.forEach(([x, y], i) => {
      expect(sign * x!).toBeCloseTo(5 * (i - 2), 3); // within the 1e-4 noise
      expect(Math.abs(y!)).toBeLessThan(1e-3);
    });
  });

  it('centred per language, an offset between the languages is no component: the same pattern lands on itself', async () => {
    const { principalCoordinates } = await import('../src/explain/embedding-map.js');
    const { mulberry32 } = await import('@crp/common');
    // two languages with the same topics (spread along axis 0) but shifted along axis 2 by 20 (the "language")
    const topics = [-2, -1, 0, 1, 2];
    const rows = [...topics.map((t) => [t, 0, 0]), ...topics.map((t) => [t, 0, 20])];
    const groups = [...topics.map(() => 'en'), ...topics.map(() => 'de')];
    const together = principalCoordinates(rows, mulberry32(1), groups);
    topics.forEach((_, i) => {
      // German topic i starts where English topic i starts
      expect(
        Math.hypot(together[i]![0]! - together[i + 5]![0]!, together[i]![1]! - together[i + 5]![1]!),
      ).toBeLessThan(1e-3);
    });
    // centred as one, the language offset is the first component: the two languages start 20 units apart
    const apart = principalCoordinates(rows, mulberry32(1));
    expect(Math.abs(apart[0]![0]! - apart[5]![0]!)).toBeCloseTo(10 * (20 / 10), 2);
  });

  it('the map is deterministic and fits from its languages', () => {
    const vectors = Array.from({ length: 12 }, (_, i) =>
      Float32Array.from({ length: 4 }, (_, j) => Math.sin(i * 1.3 + j) + (i < 6 ? 0 : 2)),
    );
    const languages = vectors.map((_, i) => (i < 6 ? 'en' : 'de'));
    const a = FittedMap.fit(vectors, { seed: 3, nEpochs: 30 }, languages);
    const b = FittedMap.fit(vectors, { seed: 3, nEpochs: 30 }, languages);
    const chunks = vectors.map((_, i) => ({
      id: `c${i}`,
      text: 't',
      metadata: { file: 'f.md', title: 't', startChar: 0, endChar: 1, language: languages[i] as 'en' | 'de' },
    }));
    expect(a.project(chunks, vectors, vectors[0]!, [])).toEqual(b.project(chunks, vectors, vectors[0]!, []));
    const random = FittedMap.fit(vectors, { seed: 3, nEpochs: 30, init: 'random' }, languages);
    expect(random.project(chunks, vectors, vectors[0]!, [])).not.toEqual(
      a.project(chunks, vectors, vectors[0]!, []),
    );
  });
});

describe('cross-lingual neighbours in the map', () => {
  it('mutual nearest neighbours across languages join the neighbour lists at the rank of an own-language neighbour (hand-computed)', async () => {
    const { gramOf, withCrossLingualNeighbors } = await import('../src/explain/embedding-map.js');
    // English 0-2 on a line at x = 0, English 3 just left of 0; German 4-6 on a line at x = 10. Each chunk's
    // nearest of the other language: 0 <-> 4, 1 <-> 5, 2 <-> 6 (mutual); 3's is 4, but 4's is 0: no pair for 3
    const rows = [
      [0, 0],
      [0, 1],
      [0, 2],
      [-0.1, 0],
      [10, 0],
      [10, 1],
      [10, 2],
    ];
    const languages = ['en', 'en', 'en', 'en', 'de', 'de', 'de'];
    const d1 = Math.hypot(0.1, 1);
    // each chunk's 3 nearest (itself first), as nearestByGram gives them
    const knn = {
      indices: [
        [0, 3, 1],
        [1, 0, 2],
        [2, 1, 0],
        [3, 0, 1],
        [4, 5, 6],
        [5, 4, 6],
        [6, 5, 4],
      ],
      distances: [
        [0, 0.1, 1],
        [0, 1, 1],
        [0, 1, 2],
        [0, 0.1, d1],
        [0, 1, 2],
        [0, 1, 1],
        [0, 1, 2],
      ],
    };
    withCrossLingualNeighbors(knn, gramOf(rows), languages, 1);
    // at most (3 - 1) / 2 = 1 pair per chunk replaces the farthest neighbour, at the distance of the nearest
    // own-language neighbour (0: 3 at 0.1)
    expect(knn.indices).toEqual([
      [0, 3, 4],
      [1, 0, 5],
      [2, 1, 6],
      [3, 0, 1],
      [4, 5, 0],
      [5, 4, 1],
      [6, 5, 2],
    ]);
    const expected = [
      [0, 0.1, 0.1],
      [0, 1, 1],
      [0, 1, 1],
      [0, 0.1, d1],
      [0, 1, 1],
      [0, 1, 1],
      [0, 1, 1],
    ];
    knn.distances.forEach((row, i) => {
      row.forEach((d, j) => {
        expect(d).toBeCloseTo(expected[i]![j]!, 6);
      });
    });
  });

  it('a floor keeps out pairs whose dot product is below it (hand-computed)', async () => {
    const { gramOf, withCrossLingualNeighbors } = await import('../src/explain/embedding-map.js');
    const rows = [
      [0, 0],
      [0, 1],
      [0, 2],
      [10, 0],
      [10, 1],
      [10, 2],
    ];
    const knn = () => ({
      indices: [
        [0, 1, 2],
        [1, 0, 2],
        [2, 1, 0],
        [3, 4, 5],
        [4, 3, 5],
        [5, 4, 3],
      ],
      distances: [
        [0, 1, 2],
        [0, 1, 1],
        [0, 1, 2],
        [0, 1, 2],
        [0, 1, 1],
        [0, 1, 2],
      ],
    });
    // the pairs 0-3, 1-4, 2-5 have dot products 0, 1 and 4: a floor of 0.5 keeps out 0-3, of 5 all three
    const half = knn();
    withCrossLingualNeighbors(half, gramOf(rows), ['en', 'en', 'en', 'de', 'de', 'de'], 1, { floor: 0.5 });
    expect(half.indices).toEqual([
      [0, 1, 2],
      [1, 0, 4],
      [2, 1, 5],
      [3, 4, 5],
      [4, 3, 1],
      [5, 4, 2],
    ]);
    const none = knn();
    withCrossLingualNeighbors(none, gramOf(rows), ['en', 'en', 'en', 'de', 'de', 'de'], 1, { floor: 5 });
    expect(none).toEqual(knn());
  });

  it('a ratio or a rank bound keeps out pairs much less alike than each side is to its own language (hand-computed)', async () => {
    const { withCrossLingualNeighbors } = await import('../src/explain/embedding-map.js');
    // cosines (unit vectors): English 0, 1, 2 loosely alike (0.55-0.6); German 3 as loose, German 4, 5, 6 a
    // tight group (0.85-0.9, as a long document on a topic of its own); the mutual pairs (m = 1) are 0-3 and
    // 2-5, both at 0.5, every other cross-lingual cosine 0.1
    const n = 7;
    const cos: Record<string, number> = {
      '0,1': 0.6,
      '0,2': 0.55,
      '1,2': 0.6,
      '3,4': 0.6,
      '3,5': 0.55,
      '3,6': 0.5,
      '4,5': 0.9,
      '4,6': 0.85,
      '5,6': 0.9,
      '0,3': 0.5,
      '2,5': 0.5,
    };
    const gram = new Float32Array(n * n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++)
        gram[i * n + j] = i === j ? 1 : (cos[`${Math.min(i, j)},${Math.max(i, j)}`] ?? 0.1);
    const d = (c: number) => Math.sqrt(2 - 2 * c);
    // each chunk's 2 nearest (itself first), from the cosines above
    const knn = () => ({
      indices: [
        [0, 1, 2],
        [1, 0, 2],
        [2, 1, 0],
        [3, 4, 5],
        [4, 5, 6],
        [5, 4, 6],
        [6, 5, 4],
      ],
      distances: [
        [0, d(0.6), d(0.55)],
        [0, d(0.6), d(0.6)],
        [0, d(0.6), d(0.55)],
        [0, d(0.6), d(0.55)],
        [0, d(0.9), d(0.85)],
        [0, d(0.9), d(0.9)],
        [0, d(0.9), d(0.85)],
      ],
    });
    const languages = ['en', 'en', 'en', 'de', 'de', 'de', 'de'];
    // the own language's 2nd nearest: 0, 2 and 3 at 0.55, 5 at 0.9 (4 and 6). Pair 0-3: 0.5 / 0.55 = 0.91 on
    // both sides; pair 2-5: 0.91 for 2 but 0.5 / 0.9 = 0.56 for 5. So 0.8 keeps 0-3 and drops 2-5
    const kept = knn();
    withCrossLingualNeighbors(kept, gram, languages, 1, { ratio: 0.8 });
    const expected = knn();
    expected.indices[0] = [0, 1, 3];
    expected.distances[0] = [0, d(0.6), d(0.6)];
    expected.indices[3] = [3, 4, 0];
    expected.distances[3] = [0, d(0.6), d(0.6)];
    expect(kept.indices).toEqual(expected.indices);
    kept.distances.forEach((row, i) => {
      row.forEach((x, j) => {
        expect(x).toBeCloseTo(expected.distances[i]![j]!, 6);
      });
    });
    // 0.5 keeps both (as no ratio), 0.95 neither
    const both = knn();
    withCrossLingualNeighbors(both, gram, languages, 1, { ratio: 0.5 });
    const plain = knn();
    withCrossLingualNeighbors(plain, gram, languages, 1);
    expect(both.indices).toEqual(plain.indices);
    expect(both.indices[2]).toEqual([2, 1, 5]);
    expect(both.indices[5]).toEqual([5, 4, 2]);
    const none = knn();
    withCrossLingualNeighbors(none, gram, languages, 1, { ratio: 0.95 });
    expect(none).toEqual(knn());
    // ranks among all languages: 3 is 0's 3rd nearest (after 1, 2) and 0 is 3's 3rd (after 4, 5; 6 ties with
    // 0); 5 is 2's 3rd, but 2 is 5's 4th (after 4, 6, 3). So a rank bound of 3 keeps 0-3 only, 4 both, 2 neither
    const byRank = knn();
    withCrossLingualNeighbors(byRank, gram, languages, 1, { rank: 3 });
    expect(byRank.indices).toEqual(expected.indices);
    const byRank4 = knn();
    withCrossLingualNeighbors(byRank4, gram, languages, 1, { rank: 4 });
    expect(byRank4.indices).toEqual(plain.indices);
    const byRank2 = knn();
    withCrossLingualNeighbors(byRank2, gram, languages, 1, { rank: 2 });
    expect(byRank2).toEqual(knn());
  });

  it('the document gate keeps a German document with no English counterpart unpaired (hand-computed)', async () => {
    const { gramOf, withCrossLingualNeighbors } = await import('../src/explain/embedding-map.js');
    // dimensions: topics a, b, c (0-2), English and German (3, 4), one per chunk position (5-7). English
    // documents A1, A2 on topic a and B1, B2 on b; German C on a (A's counterpart) and D on c, with a little of b
    // (as the Debian guide has a little of everything). Each document three chunks
    const chunk = (topic: number[], language: 3 | 4, p: number) => {
      const v = [...topic, 0, 0, 0, 0, 0];
      v[language] = 0.5;
      v[5 + p] = 0.2;
      return v;
    };
    const documents = ['A1', 'A2', 'B1', 'B2', 'C', 'D'];
    const topicOf: Record<string, number[]> = {
      A1: [1, 0, 0],
      A2: [1, 0, 0],
      B1: [0, 1, 0],
      B2: [0, 1, 0],
      C: [1, 0, 0],
      D: [0, 0.3, 1],
    };
    const rows = documents.flatMap((d) => [0, 1, 2].map((p) => chunk(topicOf[d]!, d < 'C' ? 3 : 4, p)));
    const languages = documents.flatMap((d) => [0, 1, 2].map(() => (d < 'C' ? 'en' : 'de')));
    const chunkDocuments = documents.flatMap((d) => [d, d, d]);
    // each chunk's 3 nearest (itself first): its own document's other chunks, as any order of them is
    const knn = () => ({
      indices: rows.map((_, i) => [
        i,
        ...[0, 1, 2].map((p) => 3 * Math.floor(i / 3) + p).filter((j) => j !== i),
      ]),
      distances: rows.map(() => [0, 0.2 * Math.SQRT2, 0.2 * Math.SQRT2]),
    });
    // without the gate D's chunks pair with B's: B . D = 0.3 + 0.04 beats B . C = 0.04, and D . B beats D . A
    const plain = knn();
    withCrossLingualNeighbors(plain, gramOf(rows), languages, 1);
    const pairedWith = (lists: number[][], i: number) =>
      lists[i]!.filter((j) => languages[j] !== languages[i]).map((j) => chunkDocuments[j]);
    expect(pairedWith(plain.indices, 15)).toEqual(['B1']);
    expect(pairedWith(plain.indices, 12)).toEqual(['A1']);
    // cosines of the documents' mean vectors (each [topic, language 0.5, 0.2 / 3 at 5-7]): A1-A2 and B1-B2 1 (the
    // same vectors), C-D 0.263 / (1.124 * 1.163) = 0.201, so the reference (median of each document's most alike
    // of its language: 1, 1, 1, 1, 0.201, 0.201) is 1; C-A 1.013 / 1.263 = 0.80 passes 0.6, D-B 0.313 / (1.163 *
    // 1.124) = 0.24 does not
    const gated = knn();
    withCrossLingualNeighbors(gated, gramOf(rows), languages, 1, {
      documentRatio: 0.6,
      documents: chunkDocuments,
    });
    for (const i of [15, 16, 17]) expect(gated.indices[i]).toEqual(knn().indices[i]);
    for (const i of [6, 7, 8, 9, 10, 11]) expect(pairedWith(gated.indices, i)).toEqual([]);
    for (const i of [12, 13, 14]) expect(pairedWith(gated.indices, i)).toEqual(pairedWith(plain.indices, i));
    // without the documents the gate cannot vouch for any pair
    const blind = knn();
    withCrossLingualNeighbors(blind, gramOf(rows), languages, 1, { documentRatio: 0.6 });
    expect(blind).toEqual(knn());
  });

  it('with them, UMAP lays a German group out beside the English group of its topic, not as an island', () => {
    // two topics (axes 0, 1) in two languages (axes 2, 3, three times as far apart as the topics), 8 chunks each
    const vectors: Float32Array[] = [];
    const languages: string[] = [];
    const topics: number[] = [];
    for (const [l, language] of ['en', 'de'].entries())
      for (const t of [0, 1])
        for (let p = 0; p < 8; p++) {
          const v = new Float32Array(6);
          v[t] = 1;
          v[2 + l] = 3;
          v[4] = 0.3 * Math.sin(1.7 * p + t + 2 * l);
          v[5] = 0.3 * Math.cos(1.3 * p + t + 2 * l);
          vectors.push(v);
          languages.push(language);
          topics.push(t);
        }
    const chunks = vectors.map((_, i) => ({
      id: `c${i}`,
      text: 't',
      metadata: {
        file: `${languages[i]}${topics[i]}.md`,
        title: 't',
        startChar: 0,
        endChar: 1,
        language: languages[i] as 'en' | 'de',
      },
    }));
    // for each German chunk: mean distance to the English chunks of its topic over that to the other topic's
    const ratio = (seed: number, crossLingualNeighbors: number) => {
      // no document gate: here the languages lie three times as far apart as the topics, so the documents' means
      // say only the language (the gate is tested on its own above)
      const options = { seed, nNeighbors: 5, crossLingualNeighbors, crossLingualDocumentRatio: 0 };
      const map = FittedMap.fit(vectors, options, languages).project(chunks, vectors, vectors[0]!, []);
      const at = map.points.map((p) => [p.x, p.y] as const);
      const english = at.map((_, j) => j).filter((j) => languages[j] === 'en');
      const meanTo = (i: number, same: boolean) => {
        const to = english.filter((j) => (topics[j] === topics[i]) === same);
        return (
          to.reduce((sum, j) => sum + Math.hypot(at[i]![0] - at[j]![0], at[i]![1] - at[j]![1]), 0) / to.length
        );
      };
      const german = at.map((_, i) => i).filter((i) => languages[i] === 'de');
      return german.reduce((sum, i) => sum + meanTo(i, true) / meanTo(i, false), 0) / german.length;
    };
    // the 32-point layouts vary by seed (without: 0.72, 0.43, 0.74; with: 0.27, 0.14, 0.10), so three seeds
    for (const seed of [1, 5, 9]) {
      const without = ratio(seed, 0);
      const withPairs = ratio(seed, 1);
      expect(withPairs).toBeLessThan(0.3);
      expect(withPairs).toBeLessThan(without / 2);
    }
    // the default gate without the chunks' documents vouches for no pair: the map without pairs
    const fit = (options: { crossLingualNeighbors?: number }) =>
      FittedMap.fit(vectors, { seed: 1, nNeighbors: 5, ...options }, languages).project(
        chunks,
        vectors,
        vectors[0]!,
        [],
      );
    expect(fit({ crossLingualNeighbors: 1 })).toEqual(fit({ crossLingualNeighbors: 0 }));
    expect(fit({})).toEqual(fit({ crossLingualNeighbors: 0 }));
    expect(() => FittedMap.fit(vectors, { crossLingualDocumentRatio: -1 }, languages)).toThrow(
      /crossLingualDocumentRatio must be a number >= 0 \(0: no document gate\); got -1/,
    );
  });
});
