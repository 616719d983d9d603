import { describe, expect, it } from 'vitest';
import {
  type Chunk,
  chunkContextText,
  conceptsOfTerms,
  type EmbeddingProvider,
  fuseScores,
  glossOnly,
  HashEmbedding,
  QueryTranslator,
  RagIndex,
  resolveHybrid,
} from '../src/index.js';
import { passageCoverage } from '../src/retrieval/passage-rerank.js';
import { stemsOnly } from '../src/translate/gloss.js';
import { TINY_DICTIONARY } from './helpers/corpus.js';

const chunk = (text: string, title = 'Notes', section?: string): Chunk => ({
  id: 'c1',
  text,
  metadata: {
    file: 'notes.md',
    title,
    ...(section ? { section } : {}),
    startChar: 0,
    endChar: text.length,
    language: 'en',
  },
});

describe('passage-level re-ranking', () => {
  // three sentences; concepts alpha (weight 1), gamma (2), delta (3): total 6
  const text = 'Alpha beta here. Gamma zeta there. Delta alpha again.';
  const concepts = conceptsOfTerms(['en:alpha', 'en:gamma', 'en:delta']);
  const weights = [1, 2, 3];

  it('scores the best window of consecutive sentences by the weighted share of concepts it holds (hand-counted)', () => {
    // one-sentence windows: 1/6, 2/6, (3 + 1)/6 -> 4/6
    expect(passageCoverage(chunk(text), concepts, weights, { window: 1 })).toBeCloseTo(4 / 6, 12);
    // two-sentence windows: (1 + 2)/6, (2 + 3 + 1)/6 -> 1
    expect(passageCoverage(chunk(text), concepts, weights, { window: 2 })).toBe(1);
  });

  it('leaves out the concepts the title or section names (they name the document, not a passage)', () => {
    // delta is in the title: total 3; one-sentence windows 1/3, 2/3, 1/3
    expect(passageCoverage(chunk(text, 'Delta guide'), concepts, weights, { window: 1 })).toBeCloseTo(
      2 / 3,
      12,
    );
    // every concept named by the section: nothing left to hold, coverage 1
    expect(passageCoverage(chunk(text, 'Notes', 'Alpha gamma delta'), concepts, weights, { window: 1 })).toBe(
      1,
    );
  });

  it('counts a concept matched through a translation by the translation weight', () => {
    const translated = [
      {
        word: 'Regel',
        start: 0,
        end: 5,
        terms: [{ term: 'en:rule', weight: 0.8, via: 'translation' as const, language: 'en' as const }],
      },
    ];
    expect(passageCoverage(chunk('The rule applies.'), translated, [2])).toBeCloseTo(0.8, 12);
  });

  it("fusion takes the lift of each side (question / its gloss) over that side's own mean and spread", () => {
    const dense = [0.9, 0.5, 0.1, 0.3];
    const lexical = [0, 0, 0, 0];
    const options = resolveHybrid({ denseWeight: 0.3 });
    // one side: mean 0.45, lifts 0.45, 0.05, 0, 0 -> docs 0 and 1
    expect(fuseScores(dense, lexical, options, 4).map((f) => f.doc)).toEqual([0, 1]);
    // sides 0 0 1 1: means 0.7 and 0.2, spreads 0.2 and 0.1 -> lifts 1, 0, 0, 1 (best lift 1): docs 0 and 3 score 0.3
    const fused = fuseScores(dense, lexical, options, 4, [0, 0, 1, 1]);
    expect(fused.map((f) => f.doc)).toEqual([0, 3]);
    for (const f of fused) expect(f.score).toBeCloseTo(0.3, 12);
  });

  it("search reports each hit's passage coverage when re-ranking, and nothing with rerank: 0", async () => {
    const index = new RagIndex({ embedding: new HashEmbedding() });
    const encode = (s: string) => new TextEncoder().encode(s);
    await index.updateFiles([
      {
        file: 'a.md',
        bytes: encode(
          '# Rules\n\nThe epsilon rule adds a stabilizer to the denominator. Other text follows here.\n',
        ),
      },
      {
        file: 'b.md',
        bytes: encode('# Other\n\nThe epsilon value is small. The rule is named elsewhere.\n'),
      },
    ]);
    const hits = await index.search('What does the epsilon rule add?', { topK: 2 });
    expect(hits.map((h) => h.chunk.metadata.file)).toEqual(['a.md', 'b.md']);
    for (const h of hits) expect(h.passageCoverage).toBeGreaterThan(0);
    expect(hits[0]!.passageCoverage).toBe(1);
    const plain = await index.search('What does the epsilon rule add?', { topK: 2, hybrid: { rerank: 0 } });
    for (const h of plain) expect(h.passageCoverage).toBeUndefined();
    expect(() => resolveHybrid({ rerank: -1 })).toThrow(/rerank must be a non-negative integer/);
  });

  it('embeds a German chunk through its English gloss and compares it with the question as stems', async () => {
    const seen: string[] = [];
    const inner = new HashEmbedding();
    const embedding: EmbeddingProvider = {
      id: inner.id,
      embed: async (texts) => {
        seen.push(...texts);
        return inner.embed(texts);
      },
    };
    const translator = QueryTranslator.fromStemPairs(TINY_DICTIONARY);
    const index = new RagIndex({ embedding, translator });
    const encode = (s: string) => new TextEncoder().encode(s);
    await index.updateFiles([
      { file: 'de.md', bytes: encode('# Daten\n\nWir speichern Einbettungen in einer Datenbank.\n') },
      { file: 'en.md', bytes: encode('# Data\n\nThe rule keeps embeddings in memory.\n') },
    ]);
    // the German chunk's vector is that of its gloss (title, section and text: "Wir" is a stop word), the
    // English one's that of its own text
    const de = index.chunks.find((c) => c.metadata.language === 'de')!;
    const en = index.chunks.find((c) => c.metadata.language === 'en')!;
    expect(glossOnly(chunkContextText(de), 'de', translator)).toBe(
      'Daten\nDaten\nDaten\n\n store embed databas.',
    );
    expect(seen).toEqual(['Daten\nDaten\nDaten\n\n store embed databas.', chunkContextText(en)]);
    expect(index.snapshot.denseGloss).toBe(translator.fingerprint);
    seen.length = 0;
    const question = 'Where are embeddings stored?';
    const hits = await index.search(question, { topK: 2 });
    const stems = stemsOnly(question, 'en');
    expect(stems).toBe('embed store?');
    expect(seen).toEqual([question, stems]);
    // each chunk's dense score is against the question's vector for its side: itself (English), stems (German)
    const [q, g] = await inner.embed([question, stems]);
    const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
    expect(hits).toHaveLength(2);
    for (const h of hits) {
      const v = index.vectors[index.indexOf(h.chunk.id)!]!;
      expect(h.denseScore).toBeCloseTo(dot(v, h.chunk.metadata.language === 'de' ? g! : q!), 6);
    }
    // a German question meets chunks of both languages through its gloss alone
    seen.length = 0;
    const german = 'Wo werden Einbettungen gespeichert?';
    const glossed = glossOnly(german, 'de', translator);
    expect(glossed).toBe('embed gespeichert?'); // the tiny dictionary has no base form for the participle
    const both = await index.search(german, { topK: 2 });
    expect(seen).toEqual([german, glossed]);
    const [gv] = await inner.embed([glossed]);
    expect(both).toHaveLength(2);
    for (const h of both)
      expect(h.denseScore).toBeCloseTo(dot(index.vectors[index.indexOf(h.chunk.id)!]!, gv!), 6);
    // without a chunk in the other language the question alone is embedded
    const english = new RagIndex({ embedding, translator });
    await english.updateFiles([{ file: 'en.md', bytes: encode('# Data\n\nThe rule keeps embeddings.\n') }]);
    seen.length = 0;
    await english.search(question, { topK: 1 });
    expect(seen).toEqual([question]);
  });

  it('embeds German chunks again when the dictionary their gloss came from changes, and as text without one', async () => {
    const embedded: string[] = [];
    const inner = new HashEmbedding();
    const embedding: EmbeddingProvider = {
      id: inner.id,
      embed: async (texts) => {
        embedded.push(...texts);
        return inner.embed(texts);
      },
    };
    const files = [
      {
        file: 'de.md',
        bytes: new TextEncoder().encode('# Daten\n\nWir speichern die Einbettungen in einer Datenbank.\n'),
      },
    ];
    const plain = new RagIndex({ embedding, translator: null });
    await plain.updateFiles(files);
    expect(embedded).toEqual(['Daten\nDaten\nDaten\n\nWir speichern die Einbettungen in einer Datenbank.']);
    expect(plain.snapshot.denseGloss).toBeUndefined();
    // the same files with a dictionary: the vectors were made from the text, so they are made again
    const translator = QueryTranslator.fromStemPairs(TINY_DICTIONARY);
    const glossed = new RagIndex({ embedding, translator, snapshot: plain.snapshot });
    embedded.length = 0;
    const report = await glossed.updateFiles(files);
    expect(report.embeddedChunks).toBe(1);
    expect(embedded).toEqual(['Daten\nDaten\nDaten\n\n store embed databas.']);
    // unchanged dictionary: nothing is embedded again
    embedded.length = 0;
    const again = await new RagIndex({ embedding, translator, snapshot: glossed.snapshot }).updateFiles(
      files,
    );
    expect(again.embeddedChunks).toBe(0);
    // a multilingual embedding reads German itself
    const multi: EmbeddingProvider = { ...embedding, multilingual: true, embed: embedding.embed };
    embedded.length = 0;
    const m = new RagIndex({ embedding: multi, translator, snapshot: plain.snapshot });
    expect((await m.updateFiles(files)).embeddedChunks).toBe(0);
    expect(m.snapshot.denseGloss).toBeUndefined();
  });
});
