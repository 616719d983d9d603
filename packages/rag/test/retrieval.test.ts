import { describe, expect, it } from 'vitest';
import {
  analyzeQuery,
  type Chunk,
  conceptsOfTerms,
  type EmbeddingProvider,
  fuseScores,
  glossOnly,
  HashEmbedding,
  QueryTranslator,
  RagEngine,
  RagIndex,
  resolveHybrid,
  type SearchHit,
  type Source,
  scoreSourceSentences,
} from '../src/index.js';
import { headingCoverage, passageCoverage } from '../src/retrieval/passage-rerank.js';
import { questionGloss } from '../src/translate/gloss.js';
import { TINY_DICTIONARY } from './helpers/corpus.js';

const chunk = (text: string, title = 'Notes', section?: string, file = 'notes.md'): Chunk => ({
  id: 'c1',
  text,
  metadata: {
    file,
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

  it('makes windows of the text and of its footnotes apart: a passage never runs from one into the other', () => {
    const prose = 'Alpha beta here.';
    const withNote: Chunk = {
      ...chunk(`${prose}\n\nGamma delta in a note.`),
      blocks: [
        { kind: 'paragraph', start: 0, end: prose.length },
        { kind: 'note', start: prose.length + 2, end: prose.length + 24 },
      ],
    };
    // the prose holds alpha (1 of 6), the note gamma and delta (5 of 6); never the three in one window
    expect(passageCoverage(withNote, concepts, weights, { window: 2 })).toBeCloseTo(5 / 6, 12);
    const asProse: Chunk = {
      ...withNote,
      blocks: withNote.blocks!.map((b) => ({ ...b, kind: 'paragraph' })),
    };
    expect(passageCoverage(asProse, concepts, weights, { window: 2 })).toBe(1);
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

  it("leaves out the concepts the file's name holds, where the title does not say them", () => {
    // a front-matter title without the product: delta named only by `docs/delta-tools_guide.md`; total 3,
    // one-sentence windows 1/3, 2/3, 1/3 (before: total 6, best 4/6)
    expect(
      passageCoverage(chunk(text, 'Notes', undefined, 'docs/delta-tools_guide.md'), concepts, weights, {
        window: 1,
      }),
    ).toBeCloseTo(2 / 3, 12);
    // a section of the product's document about gamma alone: gamma by the section, delta by the file name,
    // only alpha (weight 1) asked; the chunk that never repeats the product holds it fully
    expect(
      passageCoverage(
        chunk('Gamma works so. Then alpha follows.', 'Notes', 'Gamma', 'delta.md'),
        concepts,
        weights,
        { window: 1 },
      ),
    ).toBe(1);
    // another document's file name names nothing here
    expect(
      passageCoverage(
        chunk('Gamma works so. Then alpha follows.', 'Notes', 'Gamma', 'other.md'),
        concepts,
        weights,
        {
          window: 1,
        },
      ),
    ).toBeCloseTo(1 / 4, 12);
  });

  it('scores the heading that opens a chunk by the weighted share of concepts it holds (hand-counted)', () => {
    const headed = (heading: string, title = 'Notes'): Chunk => {
      const body = 'Zeta theta here.';
      return {
        ...chunk(`${heading}\n\n${body}`, title),
        blocks: [
          { kind: 'heading', start: 0, end: heading.length },
          { kind: 'paragraph', start: heading.length + 2, end: heading.length + 2 + body.length },
        ],
      };
    };
    // heading holds gamma (2) and delta (3) of 6
    expect(headingCoverage(headed('Gamma and delta'), concepts, weights)).toBeCloseTo(5 / 6, 12);
    // delta named by the title chooses the document: left out, gamma 2 of alpha + gamma 3
    expect(headingCoverage(headed('Gamma and delta', 'Delta guide'), concepts, weights)).toBeCloseTo(
      2 / 3,
      12,
    );
    // a concept weighted 0 (the question naming its document) counts for nothing
    expect(headingCoverage(headed('Gamma and delta'), concepts, [1, 2, 0])).toBeCloseTo(2 / 3, 12);
    // the same words in the text, not in an opening heading: no heading evidence
    expect(headingCoverage(chunk('Gamma and delta. Zeta theta here.'), concepts, weights)).toBe(0);
    const onlyHeading = {
      ...chunk('Gamma and delta'),
      blocks: [{ kind: 'heading' as const, start: 0, end: 15 }],
    };
    expect(headingCoverage(onlyHeading, concepts, weights)).toBe(0);
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

  it('finds a chunk by a German noun whose stem is a stop word\'s ("Ebene" stems like "eben", issue 24)', async () => {
    const index = new RagIndex({ embedding: new HashEmbedding(), translator: null });
    const encode = (s: string) => new TextEncoder().encode(s);
    await index.updateFiles([
      {
        file: 'ebene.md',
        bytes: encode('# Aufbau\n\nDie Ebene der Abstraktion bestimmt den Entwurf der Schicht.\n'),
      },
      {
        file: 'andere.md',
        bytes: encode('# Anderes\n\nDer Entwurf der Schicht folgt eben den Regeln der Sprache.\n'),
      },
    ]);
    const hits = await index.search('Welche Ebene?', { topK: 2 });
    expect(hits[0]?.chunk.metadata.file).toBe('ebene.md');
    // found by the word itself: the lexical (BM25) side ranks it first
    expect(hits[0]?.lexicalRank).toBe(1);
  });

  describe('an English word and the German words whose first sense it is', () => {
    // "file" keeps its 2 heaviest translations; "Datei" (12th in Ding) is "computer file" first, "Ordner" is not
    const translator = QueryTranslator.fromStemPairs(
      [
        'einreich\tfile\t1',
        'akt\tfile\t0.8',
        'datei\tcomput file\t1',
        'datei\tfile\t0.2',
        'ordner\tfolder\t1',
        'ordner\tfile\t0.1',
      ].join('\n'),
      { maxPerTerm: 2 },
    );
    const fileTerms = (question: string, indexed: (term: string) => boolean) =>
      analyzeQuery(question, { translator, indexed })
        .concepts.find((c) => c.word === 'file')!
        .terms.filter((t) => t.via === 'translation')
        .map((t) => [t.term, Math.round(t.weight * 100) / 100]);

    it('searches the German word the index holds at a best translation weight', () => {
      expect(fileTerms('Which file is read?', () => true)).toEqual([
        ['de:einreich', 0.8],
        ['de:akt', 0.64],
        ['de:datei', 0.8],
      ]);
    });

    it('leaves it out when no chunk holds it', () => {
      expect(fileTerms('Which file is read?', (term) => term !== 'de:datei')).toEqual([
        ['de:einreich', 0.8],
        ['de:akt', 0.64],
      ]);
    });
  });

  describe('a German question compound without a one-word translation the index holds', () => {
    const translator = QueryTranslator.fromStemPairs(
      ['korrekt\tcorrect\t1', 'bewert\tevalu\t1', 'korrektheitsbewert\tgrade\t1'].join('\n'),
    );
    const encode = (s: string) => new TextEncoder().encode(s);
    const files = [
      // both parts, once each
      { file: 'right.md', text: '# Checks\n\nThe correctness evaluator checks that an answer is correct.\n' },
      // one part, many times: as synonyms of the whole, its frequency outweighed both parts together
      {
        file: 'evaluation.md',
        text: '# Evaluation\n\nEvaluation runs: each evaluation reports evaluation metrics and evaluation logs.\n',
      },
      { file: 'setup.md', text: '# Setup\n\nInstall the package and start the server on a free port.\n' },
      { file: 'usage.md', text: '# Usage\n\nCall the client with a question and read the reply.\n' },
    ];
    const question = 'Was prüft die Korrektheitsbewertung?';

    it('is searched by its parts, each a concept of its own with its translations', () => {
      // the German whole is indexed, its translation "grade" is not
      const q = analyzeQuery(question, { translator, indexed: (term) => term !== 'en:grade' });
      const parts = q.concepts.filter((c) => c.word !== 'prüft');
      expect(parts.map((c) => c.word)).toEqual(['Korrektheits', 'bewertung']);
      expect(parts.map((c) => c.terms.map((t) => [t.term, t.weight]))).toEqual([
        [
          ['de:korrekt', 1],
          ['en:correct', 0.8],
        ],
        [
          ['de:bewert', 1],
          ['en:evalu', 0.8],
        ],
      ]);
      // its translation indexed (or no `indexed`): one concept, the parts synonyms of the whole at half weight
      for (const options of [{ translator, indexed: () => true }, { translator }]) {
        const whole = analyzeQuery(question, options).concepts;
        expect(whole.map((c) => c.word)).toEqual(['prüft', 'Korrektheitsbewertung']);
        expect(whole[1]!.terms).toContainEqual({
          term: 'en:grade',
          weight: 0.8,
          via: 'translation',
          language: 'en',
        });
        expect(whole[1]!.terms).toContainEqual({
          term: 'de:bewert',
          weight: 0.5,
          via: 'word',
          language: 'de',
        });
      }
    });

    it('ranks the chunk holding both parts before one repeating a single part', async () => {
      const index = new RagIndex({ embedding: new HashEmbedding(), translator, hybrid: { denseWeight: 0 } });
      await index.updateFiles(files.map((f) => ({ file: f.file, bytes: encode(f.text) })));
      expect(index.bm25.documentFrequency('en:grade')).toBe(0);
      const hits = await index.search(question, { topK: 2 });
      expect(hits.map((h) => h.chunk.metadata.file)).toEqual(['right.md', 'evaluation.md']);
    });

    it('still finds a German chunk by the whole compound (German chunks are indexed by its parts too)', async () => {
      const index = new RagIndex({ embedding: new HashEmbedding(), translator, hybrid: { denseWeight: 0 } });
      await index.updateFiles([
        {
          file: 'ganz.md',
          bytes: encode('# Prüfen\n\nDie Korrektheitsbewertung vergleicht jede Antwort.\n'),
        },
        { file: 'teil.md', bytes: encode('# Noten\n\nDie Bewertung der Bewertung folgt einer Bewertung.\n') },
        ...files.map((f) => ({ file: f.file, bytes: encode(f.text) })),
      ]);
      expect(index.analyzeQuestion(question).concepts.map((c) => c.word)).toContain('bewertung');
      const hits = await index.search(question, { topK: 1 });
      expect(hits[0]?.chunk.metadata.file).toBe('ganz.md');
    });
  });

  it('lifts the chunk whose opening heading names most of what is asked above one that repeats the words', async () => {
    const encode = (s: string) => new TextEncoder().encode(s);
    const index = new RagIndex({ embedding: new HashEmbedding(), hybrid: { denseWeight: 0 } });
    await index.updateFiles([
      {
        file: 'howto.md',
        bytes: encode('# Howto\n\n## Uploading packages\n\nFirst configure dput, then run it.\n'),
      },
      {
        file: 'notes.md',
        bytes: encode(
          '# Notes\n\nA package upload can wait. Every package upload waits in the queue, and the upload of a large package waits longest.\n',
        ),
      },
    ]);
    const hits = await index.search('How do I upload a package?', { topK: 2 });
    // on BM25 alone the notes win (each word three times against once, in the section path)
    expect(hits.map((h) => h.lexicalRank)).toEqual([2, 1]);
    expect(hits[0]!.chunk.metadata.file).toBe('howto.md');
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

  it('leaves the words naming the asked-about document out of passage coverage ("according to Jones")', async () => {
    // BM25 alone, without the answer re-ranking: the introduction, shorter, goes first on BM25, holding the
    // retriever and the author the question names; the passage holds the retriever and what it fetches
    const index = new RagIndex({
      embedding: new HashEmbedding(),
      translator: null,
      hybrid: { denseWeight: 0, answerRerank: false },
    });
    const notes = [
      '# Notes',
      '',
      '## Introduction',
      '',
      'Jones shows the retriever.',
      '',
      '## Retrieval',
      '',
      'The retriever fetches the chunks that match the query from the vector index.',
      '',
    ].join('\n');
    await index.updateFiles([{ file: 'notes.md', bytes: new TextEncoder().encode(notes) }]);
    const question = 'What does the retriever fetch, according to Jones?';
    const hits = await index.search(question, { topK: 2 });
    const section = (h: { chunk: Chunk }) => h.chunk.metadata.section;
    expect(hits.map(section)).toEqual(['Notes > Retrieval', 'Notes > Introduction']);
    // "Jones" counts for neither: the passage holds all that is asked, the introduction the retriever only
    expect(hits[0]!.passageCoverage).toBe(1);
    const concepts = index.analyzeQuestion(question).concepts;
    const idf = (word: string) => index.bm25.conceptIdf(concepts.find((c) => c.word === word)!);
    expect(hits[1]!.passageCoverage).toBeCloseTo(idf('retriever') / (idf('retriever') + idf('fetch')), 12);
    // on BM25 alone the introduction is first
    const plain = await index.search(question, { topK: 2, hybrid: { rerank: 0 } });
    expect(plain.map(section)).toEqual(['Notes > Introduction', 'Notes > Retrieval']);
  });

  it("scores a document-kind noun ('the lesson') at its best chunk of the document, for every chunk of it", async () => {
    // BM25 alone, no re-ranking: the order is the lexical scores'
    const index = new RagIndex({
      embedding: new HashEmbedding(),
      translator: null,
      hybrid: { denseWeight: 0, rerank: 0, answerRerank: false },
    });
    const lesson = [
      '# Notes',
      '',
      '## Introduction',
      '',
      'This lesson is about embeddings.',
      '',
      '## Storage',
      '',
      'A vector database can store the embeddings of every chunk.',
      '',
    ].join('\n');
    await index.updateFiles([
      { file: 'lesson.md', bytes: new TextEncoder().encode(lesson) },
      {
        file: 'other.md',
        bytes: new TextEncoder().encode('# Other\n\nEmbeddings are vectors of numbers.\n'),
      },
    ]);
    const question = 'Where does the lesson store embeddings?';
    const hits = await index.search(question, { topK: 3 });
    const where = (h: { chunk: Chunk }) => `${h.chunk.metadata.file}:${h.chunk.metadata.section}`;
    expect(hits.map(where)).toEqual([
      'lesson.md:Notes > Storage',
      'lesson.md:Notes > Introduction',
      'other.md:Other',
    ]);
    // hand-summed from each concept's own BM25 match: "lesson" counts for the storage chunk as in the introduction
    const concepts = index.analyzeQuestion(question).concepts;
    const match = (word: string, h: { chunk: Chunk }) =>
      index.bm25.conceptMatch(concepts.find((c) => c.word === word)!, index.indexOf(h.chunk.id)!)?.score ?? 0;
    const [storage, intro, other] = hits as [SearchHit, SearchHit, SearchHit];
    expect(match('lesson', storage)).toBe(0);
    expect(match('lesson', intro)).toBeGreaterThan(0);
    expect(storage.lexicalScore).toBeCloseTo(
      match('store', storage) + match('embeddings', storage) + match('lesson', intro),
      12,
    );
    expect(intro.lexicalScore).toBeCloseTo(match('embeddings', intro) + match('lesson', intro), 12);
    // a document without the word gets nothing for it
    expect(other.lexicalScore).toBeCloseTo(match('embeddings', other), 12);
  });

  // one guide with a short section that names "sponsor" without saying what one is, and a section that defines it
  const SPONSOR_GUIDE = [
    '# Guide',
    '',
    '## Tables',
    '',
    'Each table lists the sponsor.',
    '',
    '## Roles',
    '',
    'A sponsor is a person who uploads packages for new maintainers.',
    '',
  ].join('\n');
  const OTHER = '# Packages\n\nPackages are uploaded to the archive. A sponsor may review them.\n';
  const encode = (s: string) => new TextEncoder().encode(s);

  it("gives a document's places among the re-ranked results to its chunk that answers, not the one that repeats the question's words", async () => {
    // BM25 alone (dense weight 0), so that the test sets the order: the shorter chunk goes first
    const index = new RagIndex({
      embedding: new HashEmbedding(),
      translator: null,
      hybrid: { denseWeight: 0 },
    });
    await index.updateFiles([
      { file: 'guide.md', bytes: encode(SPONSOR_GUIDE) },
      { file: 'other.md', bytes: encode(OTHER) },
    ]);
    const question = 'What is a sponsor?';
    const plain = await index.search(question, { topK: 3, hybrid: { answerRerank: false } });
    const section = (h: { chunk: Chunk }) => `${h.chunk.metadata.file}:${h.chunk.metadata.section}`;
    expect(plain.map(section)[0]).toBe('guide.md:Guide > Tables');
    for (const h of plain) expect(h.answerScore).toBeUndefined();
    const hits = await index.search(question, { topK: 3 });
    expect(hits.map(section)[0]).toBe('guide.md:Guide > Roles');
    // the documents keep their places; only the guide's two chunks traded theirs
    expect(hits.map((h) => h.chunk.metadata.file)).toEqual(plain.map((h) => h.chunk.metadata.file));
    expect(new Set(hits.map(section))).toEqual(new Set(plain.map(section)));
    expect(hits[0]!.answerScore).toBe(1);
    for (const h of hits) {
      expect(h.answerScore).toBeGreaterThanOrEqual(0);
      expect(h.answerScore).toBeLessThanOrEqual(1);
      // the score before this stage is what the plain search ranked by
      expect(h.passageScore).toBeCloseTo(plain.find((p) => section(p) === section(h))!.score, 12);
      expect(h.score).toBeCloseTo(h.passageScore! * (0.2 + 0.8 * h.answerScore!), 12);
    }
    // with one source, that source is the defining chunk, and the answer quotes it
    const answer = await new RagEngine(index).ask(question, { topK: 1, explain: false });
    expect(answer.sources.map((s) => s.section)).toEqual(['Guide > Roles']);
    expect(answer.answer).toContain('A sponsor is a person who uploads packages');
    // with both, the answer numbers them in the order before this stage (its source-rank prior)
    const both = await new RagEngine(index).ask(question, { topK: 3, explain: false });
    expect(both.sources.map((s) => s.chunkId)).toEqual(plain.map((h) => h.chunk.id));
  });

  it('embeds a sentence the answer re-ranking embedded only once per ask, with the same answer, and answerRerank false is the order before it', async () => {
    const seen: string[] = [];
    const inner = new HashEmbedding();
    const counting: EmbeddingProvider = {
      id: inner.id,
      embed: async (texts) => {
        seen.push(...texts);
        return inner.embed(texts);
      },
    };
    const index = new RagIndex({ embedding: counting, translator: null, hybrid: { denseWeight: 0 } });
    await index.updateFiles([
      { file: 'guide.md', bytes: encode(SPONSOR_GUIDE) },
      { file: 'other.md', bytes: encode(OTHER) },
    ]);
    const question = 'What is a sponsor?';
    seen.length = 0;
    const answer = await new RagEngine(index).ask(question, { topK: 3, explain: false });
    expect(seen.length).toBeGreaterThan(3);
    expect(seen.length).toBe(new Set(seen).size);
    // the same answer as with the embedding itself, which embeds them again
    const plainIndex = new RagIndex({ embedding: inner, translator: null, hybrid: { denseWeight: 0 } });
    await plainIndex.updateFiles([
      { file: 'guide.md', bytes: encode(SPONSOR_GUIDE) },
      { file: 'other.md', bytes: encode(OTHER) },
    ]);
    Object.defineProperty(plainIndex, 'sentenceEmbedding', { value: inner });
    const again = await new RagEngine(plainIndex).ask(question, { topK: 3, explain: false });
    expect(again.answer).toBe(answer.answer);
    expect(again.sentences).toEqual(answer.sentences);
    // off: the order before the stage, which is the re-ranked hits sorted by their passage score (every place
    // of the pool is among them; ties in index order, as the fusion orders them), and no score of the stage
    const off = await index.search(question, { topK: 3, hybrid: { answerRerank: false } });
    for (const h of off) expect(h.passageScore).toBeUndefined();
    const on = await index.search(question, { topK: 3 });
    const byPassage = [...on].sort(
      (a, b) => b.passageScore! - a.passageScore! || index.indexOf(a.chunk.id)! - index.indexOf(b.chunk.id)!,
    );
    expect(off.map((h) => h.chunk.id)).toEqual(byPassage.map((h) => h.chunk.id));
    expect(off.map((h) => h.score)).toEqual(byPassage.map((h) => h.passageScore));
    expect(on.map((h) => h.chunk.id)).not.toEqual(off.map((h) => h.chunk.id));
  });

  it("leaves chunks in the other language than the question's in their places (their sentences are only glossed)", async () => {
    const index = new RagIndex({ embedding: new HashEmbedding(), translator: null });
    const german = [
      '# Leitfaden',
      '',
      '## Tabellen',
      '',
      'Jede Tabelle nennt den Sponsor und die Seite des Sponsor.',
      '',
      '## Rollen',
      '',
      'Ein Sponsor ist eine Person, die Pakete für neue Betreuer hochlädt, nachdem sie den Inhalt geprüft hat.',
      '',
    ].join('\n');
    await index.updateFiles([
      { file: 'guide.md', bytes: encode(SPONSOR_GUIDE) },
      { file: 'leitfaden.md', bytes: encode(german) },
      { file: 'other.md', bytes: encode(OTHER) },
    ]);
    const question = 'What is a sponsor?';
    const plain = await index.search(question, { topK: 5, hybrid: { answerRerank: false } });
    const hits = await index.search(question, { topK: 5 });
    const germanAt = plain.flatMap((h, i) => (h.chunk.metadata.language === 'de' ? [i] : []));
    expect(germanAt.length).toBe(2);
    expect(hits.some((h) => h.answerScore !== undefined)).toBe(true);
    for (const i of germanAt) {
      expect(hits[i]!.chunk.id).toBe(plain[i]!.chunk.id);
      expect(hits[i]!.answerScore).toBeUndefined();
      expect(hits[i]!.score).toBe(plain[i]!.score);
      expect(hits[i]!.passageScore).toBe(plain[i]!.score);
    }
  });

  it('leaves the order alone when no document has two places (and embeds no sentence for it)', async () => {
    const seen: string[] = [];
    const inner = new HashEmbedding();
    const embedding: EmbeddingProvider = {
      id: inner.id,
      embed: async (texts) => {
        seen.push(...texts);
        return inner.embed(texts);
      },
    };
    const index = new RagIndex({ embedding, translator: null });
    await index.updateFiles([
      { file: 'a.md', bytes: encode('# A\n\nA sponsor is a person who uploads packages.\n') },
      { file: 'b.md', bytes: encode(OTHER) },
    ]);
    seen.length = 0;
    const hits = await index.search('What is a sponsor?', { topK: 2 });
    expect(seen).toEqual(['What is a sponsor?']);
    for (const h of hits) expect(h.answerScore).toBeUndefined();
  });

  it('scores sentences without the source-rank prior when asked (to rank the sources themselves)', async () => {
    const embedding = new HashEmbedding({ dimensions: 64 });
    // asking more than the name: a definition of a name asked for alone would need no prior (`asksForName`)
    const question = 'What is a sponsor in Debian packaging?';
    const [qv] = await embedding.embed([question]);
    const text = 'A sponsor is a person who uploads packages.';
    const src = (n: number): Source => ({
      n,
      chunkId: `c${n}`,
      file: `s${n}.md`,
      title: 'notes',
      language: 'en',
      citation: `[s${n}.md]`,
      score: 1,
      denseScore: 1,
      lexicalScore: 1,
      text,
    });
    const query = analyzeQuery(question);
    const sources = [src(1), src(2)];
    const [first, second] = await scoreSourceSentences(question, qv!, query, sources, embedding);
    // the same sentence in source 2 needs more: the prior 1 / (1 + 1/4), square-rooted for a definition
    expect(second!.score).toBeCloseTo(first!.score / Math.sqrt(1.25), 12);
    expect(first!.relation).toBe(true);
    const [a, b] = await scoreSourceSentences(
      question,
      qv!,
      query,
      sources,
      embedding,
      undefined,
      undefined,
      undefined,
      {
        rankPrior: false,
      },
    );
    expect(b!.score).toBe(a!.score);
    expect(a!.score).toBe(first!.score);
  });

  it('compares a question with chunks in the other language through its gloss, and only those chunks', async () => {
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
    seen.length = 0;
    const question = 'Where are embeddings stored?';
    const hits = await index.search(question, { topK: 2 });
    const gloss = glossOnly(question, 'en', translator);
    expect(gloss).toBe('einbett speich?');
    expect(seen).toEqual([question, gloss]);
    // each chunk's dense score is against the vector of its own language
    const [q, g] = await inner.embed([question, gloss]);
    const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
    for (const h of hits) {
      const i = index.indexOf(h.chunk.id)!;
      const v = index.vectors[i]!;
      expect(h.denseScore).toBeCloseTo(dot(v, h.chunk.metadata.language === 'de' ? g! : q!), 6);
    }
    // a German question is glossed into English for the English chunk as its search reads it: the participle
    // by its base form ("gespeichert" as "speichern": "store"), which the word-by-word gloss left German
    seen.length = 0;
    const german = 'Wo werden Einbettungen gespeichert?';
    await index.search(german, { topK: 1 });
    expect(seen).toEqual([german, 'embed store']);
    expect(glossOnly(german, 'de', translator)).toBe('embed gespeichert?');
    // without a chunk in the other language the question alone is embedded
    const english = new RagIndex({ embedding, translator });
    await english.updateFiles([{ file: 'en.md', bytes: encode('# Data\n\nThe rule keeps embeddings.\n') }]);
    seen.length = 0;
    await english.search(question, { topK: 1 });
    expect(seen).toEqual([question]);
  });
});

describe('a question that asks what a name is brings a chunk that defines the name among the sources', () => {
  const encode = (s: string) => new TextEncoder().encode(s);
  // four documents name ZQX; only the glossary, long and naming it twice, says what it is
  const FILES = [
    {
      file: 'usage.md',
      text: '# Usage\n\nZQX runs fast. Call ZQX with a model; ZQX then returns ZQX maps.\n',
    },
    {
      file: 'tips.md',
      text: '# Tips\n\nFor ZQX, set the batch size. ZQX maps look better with ZQX smoothing.\n',
    },
    { file: 'cache.md', text: '# Cache\n\nThe ZQX output is cached. ZQX caches live in memory.\n' },
    {
      file: 'glossary.md',
      text:
        '# Methods\n\n- zqx.*: ZQX attributes relevance to each input in proportion to its contribution, layer by ' +
        'layer, from the output of the image classifier back to the pixels of the input image.\n',
    },
  ];
  const build = async () => {
    // BM25 alone (dense weight 0): the test sets the order, the glossary last (fewest mentions in the most words)
    const index = new RagIndex({
      embedding: new HashEmbedding(),
      translator: null,
      hybrid: { denseWeight: 0 },
    });
    await index.updateFiles(FILES.map((f) => ({ file: f.file, bytes: encode(f.text) })));
    return index;
  };
  const files = (hits: readonly SearchHit[]) => hits.map((h) => h.chunk.metadata.file);

  it('the best defining chunk of the re-ranked pool takes the last place, the others keep their order', async () => {
    const index = await build();
    // rerank 0: no pool, the order as fused
    const plain = files(await index.search('What is ZQX?', { topK: 4, hybrid: { rerank: 0 } }));
    expect(plain[3]).toBe('glossary.md');
    for (const question of ['What is ZQX?', 'Was ist ZQX?']) {
      const hits = await index.search(question, { topK: 3 });
      expect(files(hits)).toEqual([plain[0], plain[1], 'glossary.md']);
      // with its own score: it stands there for what it holds, not for a higher rank
      expect(hits[2]!.score).toBeLessThan(hits[1]!.score);
    }
    // and the answer quotes its definition, though it is the last source
    const answer = await new RagEngine(index).ask('What is ZQX?', { topK: 3, explain: false });
    expect(answer.sources.map((s) => s.file)).toContain('glossary.md');
    expect(answer.sentences[0]!.text).toContain('ZQX attributes relevance to each input');
  });

  it('not for a question that asks more than the name, nor with rerank 0, nor when a source defines it', async () => {
    const index = await build();
    const plain = files(await index.search('What is ZQX?', { topK: 4, hybrid: { rerank: 0 } }));
    expect(files(await index.search('What is ZQX?', { topK: 3, hybrid: { rerank: 0 } }))).toEqual(
      plain.slice(0, 3),
    );
    // "ZQX maps" is not the name asked for: two search concepts beyond a one-word subject
    const more = 'Why does ZQX return maps?';
    expect(files(await index.search(more, { topK: 3 }))).not.toContain('glossary.md');
    await index.updateFiles([
      {
        file: 'cache.md',
        bytes: encode('# Cache\n\nZQX is a method that caches maps. ZQX caches live in memory.\n'),
      },
    ]);
    const hits = files(await index.search('What is ZQX?', { topK: 3 }));
    expect(hits).toContain('cache.md');
    expect(hits).not.toContain('glossary.md');
  });
});

describe('questionGloss: a German question said in English as its search reads it', () => {
  const translator = QueryTranslator.fromStemPairs(
    [
      'brauch\tneed\t1',
      'metrik\tmeasur\t1',
      'metrik\tmetric\t0.5',
      'korrekt\tcorrect\t1',
      'bewert\tevalu\t1',
      'bewert\trate\t0.5',
      'ziel\tobject\t1',
      'ziel\taim\t0.6',
      'version\tversion\t1',
      'version\tedit\t0.5',
    ].join('\n'),
  );
  const gloss = (question: string) => {
    const analyzed = analyzeQuery(question, { translator, indexed: () => true });
    expect(analyzed.language).toBe('de');
    return questionGloss(analyzed.concepts, 'de');
  };

  it('translates inflections by their base form, compounds by their parts, cognates first, names as written', () => {
    const question = 'Wofür braucht LlamaIndex die Metrik Korrektheitsbewertung?';
    expect(gloss(question)).toBe('need LlamaIndex metric correct evalu');
    // word by word, the verb and the compound stayed German and the general-language sense of "Metrik" won
    expect(glossOnly(question, 'de', translator)).toBe('braucht LlamaIndex measur Korrektheitsbewertung?');
  });

  it('says a hyphenated word by its parts once and takes the heaviest translation of the rest', () => {
    expect(gloss('Welche Python-Version braucht man?')).toBe('Python version need');
    expect(gloss('Was ist das Ziel der Korrektheitsbewertung?')).toBe('object correct evalu');
  });

  it('leaves out phrase concepts, whose words are glossed one by one', () => {
    const phrases = QueryTranslator.fromStemPairs(
      'vektor\tvector\t1\ndatenbank\tdatabas\t1\nvektor datenbank\tvectorstor\t1',
    );
    const analyzed = analyzeQuery('Was speichert eine Vektor Datenbank?', { translator: phrases });
    expect(analyzed.concepts.map((c) => c.word)).toContain('Vektor Datenbank');
    expect(questionGloss(analyzed.concepts, 'de')).toBe('speichert vector databas');
  });
});
