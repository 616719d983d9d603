import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// from the root entry point, where a renderer in a browser finds it too
import { answerText } from '../src/index.js';
import {
  buildPrompt,
  chunkSentences,
  composeExtractiveAnswer,
  createLlmGenerator,
  defaultGenerator,
  parseGeneratedAnswer,
  type QuestionIntent,
  RagEngine,
  redact,
  type ScoredSentence,
  type Source,
  stripCitations,
} from '../src/node.js';
import { writeSmallCorpus } from './helpers/corpus.js';
import { CountingEmbedding } from './helpers/counting-embedding.js';
import { json, startFakeServer } from './helpers/fake-server.js';
import { tempDir } from './helpers/temp-dir.js';

const FAQ = [
  '# CRP FAQ',
  '',
  '## How does CRP differ from LRP?',
  '',
  'LRP returns one heatmap per prediction for the whole model. However, CRP splits that heatmap into one heatmap per concept by masking the relevance flow of single channels.',
  '',
  '```python',
  '# load CRP toolbox',
  'attribution = CondAttribution(model)',
  '```',
  '',
  '## Which rule is used for dense layers?',
  '',
  'Dense layers use the **epsilon** rule. See the [rule guide](https://example.org/rules) for the stabiliser.',
].join('\n');

let root = '';
let cleanup: () => Promise<void> = async () => {};
let engine: RagEngine;
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir());
  const docs = path.join(root, 'docs');
  await writeSmallCorpus(docs);
  await mkdir(docs, { recursive: true });
  await writeFile(path.join(docs, 'faq.md'), FAQ);
  engine = await RagEngine.open({
    dir: path.join(root, 'index'),
    embedding: new CountingEmbedding(),
    generator: null,
  });
  await engine.update(docs);
});
afterAll(() => cleanup());

const source = (n: number, file: string, text = 'x', page?: number): Source => ({
  n,
  chunkId: `${file}#${n}`,
  file,
  title: file,
  language: 'en',
  ...(page ? { page } : {}),
  citation: page ? `[${file}, p. ${page}]` : `[${file}]`,
  score: 1,
  denseScore: 1,
  lexicalScore: 1,
  text,
});

describe('extractive answers', () => {
  it('answers "how does X differ from Y" with the sentence that answers, its needed predecessor, no heading, no code', async () => {
    const a = await engine.ask('How does CRP differ from LRP?', { explain: false });
    expect(a.mode).toBe('extractive');
    expect(
      a.answer.startsWith(
        'LRP returns one heatmap per prediction for the whole model. However, CRP splits that heatmap into one heatmap per concept by masking the relevance flow of single channels. [faq.md]',
      ),
    ).toBe(true);
    expect(a.answer).not.toContain('How does CRP differ');
    expect(a.answer).not.toContain('CondAttribution');
    expect(a.answer).not.toMatch(/[#`*]/);
    for (const s of a.sentences) {
      expect(s.label).toBe('quotation');
      expect(s.support?.score).toBeUndefined();
    }
    expect(a.sentences[0]!.support).toEqual({
      source: 1,
      sentence: 'LRP returns one heatmap per prediction for the whole model.',
    });
    expect(a.grounded).toBe(true);
    expect(a.language).toBe('en');
  });

  it('gives clean text with citations from a PDF page and from Markdown with links and emphasis', async () => {
    const pdf = await engine.ask('What shard size does the converter create by default?', { explain: false });
    expect(pdf.answer).toContain(
      'The command above creates shards of size 4 MB by default. [shards.pdf, p. 2]',
    );
    const md = await engine.ask('Which rule is used for dense layers?', { explain: false });
    expect(md.answer).toContain('Dense layers use the epsilon rule.');
    expect(md.answer).not.toMatch(/\*\*|\]\(/);
  });

  it('"What is CRP?" when no source defines CRP: the passage that uses it, said not to be a definition', async () => {
    const a = await engine.ask('What is CRP?', { explain: false });
    expect(a.note).toBe('No source defines CRP; the passage that says most about it:');
    expect(a.answer).toContain('CRP splits that heatmap');
    expect((await engine.ask('Was ist CRP?', { explain: false })).note).toBe(
      'Keine Quelle definiert CRP; die Stelle, die am meisten darüber sagt:',
    );
    // a question that asks more than the name gets no such note
    expect((await engine.ask('How does CRP differ from LRP?', { explain: false })).note).toBeUndefined();
  });

  it('uses code only when the question asks for code', async () => {
    const a = await engine.ask('Show the code that loads the CRP toolbox', { explain: false });
    expect(a.answer).toContain('attribution = CondAttribution(model)');
  });

  it('an English question is answered from the German passage, marked as German', async () => {
    const a = await engine.ask('Why are embeddings stored in a vector database?', {
      explain: false,
      topK: 3,
    });
    expect(a.sources[0]!.language).toBe('de');
    expect(a.answer).toContain('Wir speichern unsere Einbettungen in Vektor-Datenbanken');
    // the German quotation comes with its word-by-word gloss from the dictionary
    const quoted = a.sentences.find((s) => s.text.includes('Wir speichern'));
    expect(quoted?.gloss).toMatch(/speichern \[(save|store)\]/);
    expect(a.language).toBe('de');
    expect(a.questionLanguage).toBe('en');
  });

  it('a step quoted from the other language brings its command as code, glossed only in its prose', async () => {
    const { dir, cleanup: done } = await tempDir();
    try {
      await writeFile(
        path.join(dir, 'setup.md'),
        [
          '# Training',
          '',
          'Start the training of the small model with the following command:',
          '',
          '```',
          'python train.py --model small \\',
          '    --epochs 3',
          '```',
        ].join('\n'),
      );
      const own = await RagEngine.open({
        dir: path.join(dir, 'index'),
        embedding: new CountingEmbedding(),
        generator: null,
      });
      await own.update(dir);
      const a = await own.ask('Wie starte ich das Training des kleinen Modells?', { explain: false });
      expect(a.sentences.map((x) => x.kind)).toEqual(['prose', 'code']);
      const [step, code] = a.sentences;
      expect(code!.text).toBe('python train.py --model small \\\n    --epochs 3\n[setup.md]');
      expect(code!.citation).toBe('[setup.md]');
      // the English step is glossed for the German reader, the command (its "small") is not
      expect(step!.gloss).toContain('small [klein]');
      expect(code!.gloss).toBeUndefined();
    } finally {
      await done();
    }
  });

  it("glosses a German quotation in the senses the index's English chunks write", async () => {
    const { dir, cleanup: done } = await tempDir();
    try {
      const docs = path.join(dir, 'docs');
      await mkdir(docs, { recursive: true });
      // English chunks that write size, never greatness; Ding's Größe is greatness first
      for (const [file, text] of [
        [
          'cache.md',
          '# Cache\n\nThe cache size is set in the configuration file. Larger sizes use more memory.\n',
        ],
        ['shards.md', '# Shards\n\nEach shard has a fixed size of four megabytes.\n'],
        [
          'zwischenspeicher.md',
          '# Zwischenspeicher\n\nDie Größe des Zwischenspeichers legt die Konfigurationsdatei fest.\n',
        ],
      ] as const)
        await writeFile(path.join(docs, file), text);
      const small = await RagEngine.open({
        dir: path.join(dir, 'index'),
        embedding: new CountingEmbedding(),
        generator: null,
      });
      await small.update(docs);
      const a = await small.ask('Which file sets the Zwischenspeicher Größe?', { explain: false });
      const quoted = a.sentences.find((s) => s.text.includes('Die Größe'));
      expect(quoted?.gloss).toContain('Größe [size]');
    } finally {
      await done();
    }
  });

  const mk = (
    source: number,
    index: number,
    text: string,
    score: number,
    kind: ScoredSentence['kind'] = 'paragraph',
  ) =>
    ({
      source,
      index,
      text,
      score,
      kind,
      start: 0,
      end: text.length,
      dense: 0,
      lexical: 0,
      novelty: 1,
      relation: false,
      boilerplate: false,
      vector: new Float32Array(),
    }) as ScoredSentence;

  it('quotes a footnote apart from the prose: no passage runs from the text into a note or out of it', () => {
    const sources = [source(1, 'a.pdf', 'x', 2)];
    const s = (index: number, text: string, score: number, kind: ScoredSentence['kind'] = 'paragraph') =>
      mk(1, index, text, score, kind);
    // a note that refers back ("This ...") and scores nearly as high stays out of the prose's passage
    const prose = composeExtractiveAnswer(
      [
        s(0, 'The tool writes the archive to the output folder.', 0.9),
        s(1, 'This is only an example of the folder name.', 0.8, 'note'),
      ],
      sources,
    );
    expect(prose.text).toBe('The tool writes the archive to the output folder. [a.pdf, p. 2]');
    // a note may answer (a guide's notes hold instructions); it stands with the note it runs on into, not with the
    // strong prose above it
    const note = composeExtractiveAnswer(
      [
        s(0, 'The tool writes the archive to the output folder.', 0.8),
        s(1, 'Alternatively the tool writes the archive to the folder named by', 0.9, 'note'),
        s(2, 'the option --out, which it creates first.', 0.1, 'note'),
      ],
      sources,
    );
    expect(note.text).toBe(
      'Alternatively the tool writes the archive to the folder named by the option --out, which it creates first. [a.pdf, p. 2]',
    );
    // prose after a note does not go on from it, even opening lower case
    const after = composeExtractiveAnswer(
      [
        s(0, 'See the manual for the folder layout', 0.1, 'note'),
        s(1, 'and the tool empties the output folder before it writes.', 0.9),
      ],
      sources,
    );
    expect(after.text).toBe('and the tool empties the output folder before it writes. [a.pdf, p. 2]');
  });

  it('picks sentences that add to the question, drops duplicates from overlapping chunks', () => {
    const sources = [source(1, 'a.md'), source(2, 'b.pdf', 'x', 3)];
    const answer = composeExtractiveAnswer(
      [
        mk(1, 0, 'The gamma rule favours positive contributions.', 0.9),
        mk(2, 4, 'The gamma rule favours positive contributions.', 0.85), // the same sentence in an overlapping chunk
        mk(2, 5, 'It is used for convolutional layers.', 0.8),
        mk(2, 6, 'Gamma rule', 0.99, 'heading'),
      ].map((s) => (s.kind === 'heading' ? { ...s, score: 0 } : s)),
      sources,
    );
    expect(answer.text).toBe(
      'The gamma rule favours positive contributions. [a.md] It is used for convolutional layers. [b.pdf, p. 3]',
    );
    expect(composeExtractiveAnswer([], [])).toEqual({ text: '', sentences: [] });
  });

  it('answers with one contiguous passage in reading order, the answering sentences highlighted', () => {
    const sources = [source(1, 'a.md'), source(2, 'b.md')];
    const s = (index: number, text: string, score: number, extra: Partial<ScoredSentence> = {}) =>
      ({ ...mk(1, index, text, score), ...extra }) as ScoredSentence;
    const answer = composeExtractiveAnswer(
      [
        s(0, 'Contents . . . . . . . . 12', 0.95, { boilerplate: true }), // a table-of-contents line
        s(1, 'The epsilon rule adds a small term to the denominator.', 0.4),
        s(2, 'Use alpha-beta when negative evidence should be shown separately.', 0.9),
        s(3, 'This keeps positive and negative relevance apart.', 0.2), // refers back: context
        s(4, 'Installation is described elsewhere.', 0.1),
        { ...mk(2, 0, 'Alpha-beta weighs positive and negative contributions.', 0.5) },
      ],
      sources,
    );
    // the passage runs from the best sentence through the one that refers back to it; the TOC line never stands
    expect(answer.sentences.map((x) => [x.text, x.highlight])).toEqual([
      ['Use alpha-beta when negative evidence should be shown separately.', true],
      ['This keeps positive and negative relevance apart. [a.md]', false],
    ]);
    // a predecessor that also answers (at least 60% of the best score) joins in reading order
    const two = composeExtractiveAnswer(
      [
        s(0, 'Gamma favours positive weights of the layer.', 0.7),
        s(1, 'Epsilon absorbs weak contributions.', 1),
      ],
      sources,
    );
    expect(two.text).toBe(
      'Gamma favours positive weights of the layer. Epsilon absorbs weak contributions. [a.md]',
    );
    expect(two.sentences.every((x) => x.highlight)).toBe(true);
    // at most four sentences, and a second source only when nearly as good and saying something new
    const many = composeExtractiveAnswer(
      [
        ...[0, 1, 2, 3, 4, 5].map((i) => s(i, `Sentence number ${i} talks about relevance ${i}.`, 1)),
        { ...mk(2, 0, 'Sentence number 0 talks about relevance 0.', 0.99) },
        { ...mk(2, 1, 'Flat spreads relevance uniformly over the receptive field.', 0.9) },
      ],
      sources,
    );
    // a sentence that shares no word with the question does not anchor the answer when another one does
    const shared = composeExtractiveAnswer(
      [
        s(0, 'Embeddings of this kind look alike for any text at all.', 0.9),
        s(1, 'Installation is described in the next chapter of this guide.', 0.1),
        s(2, 'The epsilon rule adds a small term to the denominator.', 0.5, { lexical: 0.6 }),
      ],
      sources,
    );
    expect(shared.text).toBe('The epsilon rule adds a small term to the denominator. [a.md]');
    // a sentence that opens by referring back ("Wenn dies der Fall ist, ...") comes with the one before it
    const conditional = composeExtractiveAnswer(
      [
        s(0, 'Lintian meldet manchmal eine Ausnahme als Fehler.', 0.9),
        s(1, 'Wenn dies der Fall ist, unterdrückt eine Datei overrides die Meldung.', 0.1),
      ],
      sources,
    );
    expect(conditional.sentences).toHaveLength(2);
    expect(many.sentences.filter((x) => x.citations[0] === 1)).toHaveLength(4);
    expect(many.sentences.filter((x) => x.citations[0] === 2).map((x) => x.text)).toEqual([
      'Flat spreads relevance uniformly over the receptive field. [b.md]',
    ]);
  });

  it('shows the command a step of a procedure announces, and no code for other questions', () => {
    const sources = [source(1, 'a.md')];
    const s = (index: number, text: string, score: number, kind: ScoredSentence['kind'] = 'paragraph') =>
      ({ ...mk(1, index, text, score, kind), ...(kind === 'code' ? { score: 0 } : {}) }) as ScoredSentence;
    const steps = [
      s(0, 'Ein erstes Paket erstellen Sie mit dem Befehl dh_make wie folgt:', 1),
      s(1, '$ cd gentoo-0.9.12\n$ dh_make -f ../gentoo-0.9.12.tar.gz', 0, 'code'),
      s(2, 'Danach passen Sie die Dateien im Verzeichnis debian an.', 0.2),
    ];
    const procedure = { kind: 'procedure', subject: [] } as unknown as QuestionIntent;
    expect(
      composeExtractiveAnswer(steps, sources, { intent: procedure }).sentences.map((x) => [
        x.text,
        x.highlight,
      ]),
    ).toEqual([
      ['Ein erstes Paket erstellen Sie mit dem Befehl dh_make wie folgt:', true],
      ['$ cd gentoo-0.9.12\n$ dh_make -f ../gentoo-0.9.12.tar.gz\n[a.md]', false],
    ]);
    // a procedure does not bring a block no sentence announces
    const unannounced = steps.map((x) =>
      x.index === 0 ? { ...x, text: 'Ein erstes Paket erstellt dh_make.' } : x,
    );
    expect(composeExtractiveAnswer(unannounced, sources, { intent: procedure }).text).toBe(
      'Ein erstes Paket erstellt dh_make. [a.md]',
    );
  });

  it('keeps the lines and indentation of the code block a step announces, and says it is code', () => {
    // the block continues code from before: its first line is indented too
    const text = [
      'Register the hook on every layer as follows:',
      '',
      '    for layer in model.modules():',
      '        if depth < 3 and layer.bias is not None:',
      '            layer.register(hook)',
      '',
      'Then run the model once.',
    ].join('\n');
    const codeStart = text.indexOf('    for');
    const codeEnd = text.indexOf('\n\nThen');
    const blocks = [
      { kind: 'paragraph' as const, start: 0, end: codeStart - 2 },
      { kind: 'code' as const, start: codeStart, end: codeEnd },
      { kind: 'paragraph' as const, start: codeEnd + 2, end: text.length },
    ];
    const sources = [{ ...source(1, 'hooks.md', text), blocks }];
    const scores = [1, 0, 0.2];
    const sentences = chunkSentences({ text, blocks }).map(
      (p, index) =>
        ({ ...mk(1, index, p.text, scores[index]!, p.kind), start: p.start, end: p.end }) as ScoredSentence,
    );
    const procedure = { kind: 'procedure', subject: [] } as unknown as QuestionIntent;
    const code = text.slice(codeStart, codeEnd);
    // "Then ..." leans back on the code: the block stands inside the passage, the citation after the last sentence
    const inside = composeExtractiveAnswer(sentences, sources, { intent: procedure });
    expect(inside.sentences.map((x) => [x.kind, x.text, x.citation])).toEqual([
      ['prose', 'Register the hook on every layer as follows:', undefined],
      ['code', code, undefined],
      ['prose', 'Then run the model once. [hooks.md]', '[hooks.md]'],
    ]);
    expect(inside.text).toBe(
      `Register the hook on every layer as follows:\n\n${code}\n\nThen run the model once. [hooks.md]`,
    );
    // closing the passage, the block carries the citation on a line of its own; as plain text it can be indented
    const closing = composeExtractiveAnswer(sentences.slice(0, 2), sources, { intent: procedure });
    expect(closing.sentences[1]).toMatchObject({
      kind: 'code',
      text: `${code}\n[hooks.md]`,
      citation: '[hooks.md]',
    });
    expect(answerText(closing.sentences, '  ')).toBe(
      [
        'Register the hook on every layer as follows:',
        '',
        '      for layer in model.modules():',
        '          if depth < 3 and layer.bias is not None:',
        '              layer.register(hook)',
        '[hooks.md]',
      ].join('\n'),
    );
  });

  const quoted = (a: { sentences: readonly { text: string }[] }) => a.sentences.map((x) => x.text);

  it('never ends a passage on an announcement without the block it announces, for any question', () => {
    const sources = [source(1, 'tool.md')];
    const other = { kind: 'other', subject: [] } as unknown as QuestionIntent;
    const install = [
      mk(1, 0, 'The tool is published on the package index.', 1),
      mk(1, 1, 'The development version can be cloned and installed with', 0.7),
      { ...mk(1, 2, '$ git clone https://example.org/tool.git\n$ pip install ./tool', 0, 'code') },
      mk(1, 3, 'Nothing else is needed on a fresh system.', 0.1),
    ];
    // prose cut off right before code goes on in it: the command comes along, as code
    const taken = composeExtractiveAnswer(install, sources, { intent: other });
    expect(taken.sentences.map((x) => [x.kind, x.text])).toEqual([
      ['prose', 'The tool is published on the package index.'],
      ['prose', 'The development version can be cloned and installed with'],
      ['code', '$ git clone https://example.org/tool.git\n$ pip install ./tool\n[tool.md]'],
    ]);
    // without room for the block the passage ends one sentence earlier, on the anchor
    expect(composeExtractiveAnswer(install, sources, { intent: other, maxSentences: 2 }).text).toBe(
      'The tool is published on the package index. [tool.md]',
    );
    // an announcement closing its chunk has what it announces in the next chunk: it is left out
    expect(
      composeExtractiveAnswer(
        [install[0]!, mk(1, 1, 'Die Erweiterungen installieren Sie wie folgt.', 0.8)],
        sources,
        { intent: other },
      ).text,
    ).toBe('The tool is published on the package index. [tool.md]');
    // a block said already by the first passage is not repeated: the announcement goes too
    const twoSources = [source(1, 'tool.md'), source(2, 'notes.md')];
    const again = composeExtractiveAnswer(
      [
        mk(2, 0, 'Clone the repository and install it from the checkout:', 1),
        { ...mk(2, 1, '$ git clone https://example.org/tool.git\n$ pip install ./tool', 0, 'code') },
        ...install.map((x) => ({ ...x, score: x.score * 0.9 })),
      ],
      twoSources,
      { intent: other },
    );
    expect(again.sentences.map((x) => x.text)).toEqual([
      'Clone the repository and install it from the checkout:',
      '$ git clone https://example.org/tool.git\n$ pip install ./tool\n[notes.md]',
      'The tool is published on the package index. [tool.md]',
    ]);
  });

  it('brings the items of a list a sentence announces while there is room, never table rows (German)', () => {
    const sources = [source(1, 'konfig.md')];
    const other = { kind: 'other', subject: [] } as unknown as QuestionIntent;
    const doc = [
      mk(1, 0, 'Das Werkzeug liest beim Start seine Einstellungen.', 1),
      mk(1, 1, 'Die Dateien werden in dieser Reihenfolge gelesen, und zwar wie folgt.', 0.7),
      mk(1, 2, '/etc/werkzeug/grundeinstellung.toml', 0, 'list-item'),
      mk(1, 3, '~/.config/werkzeug/benutzer.toml', 0, 'list-item'),
      mk(1, 4, './werkzeug.toml im Projektordner', 0, 'list-item'),
    ];
    expect(quoted(composeExtractiveAnswer(doc, sources, { intent: other }))).toEqual([
      'Das Werkzeug liest beim Start seine Einstellungen.',
      'Die Dateien werden in dieser Reihenfolge gelesen, und zwar wie folgt.',
      '/etc/werkzeug/grundeinstellung.toml',
      '~/.config/werkzeug/benutzer.toml [konfig.md]',
    ]);
    // table rows do not stand in an answer: the sentence announcing them is left out
    const table = doc.map((x) => (x.kind === 'list-item' ? { ...x, kind: 'table-row' as const } : x));
    expect(composeExtractiveAnswer(table, sources, { intent: other }).text).toBe(
      'Das Werkzeug liest beim Start seine Einstellungen. [konfig.md]',
    );
    // an anchor that announces a block brings it before context that only precedes it
    const anchored = [
      mk(1, 0, 'Das Werkzeug liest beim Start seine Einstellungen.', 0.7),
      mk(1, 1, 'Eine neue Konfiguration legen Sie folgendermaßen an', 1),
      { ...mk(1, 2, '$ werkzeug init --konfig', 0, 'code') },
    ];
    expect(quoted(composeExtractiveAnswer(anchored, sources, { intent: other, maxSentences: 2 }))).toEqual([
      'Eine neue Konfiguration legen Sie folgendermaßen an',
      '$ werkzeug init --konfig\n[konfig.md]',
    ]);
  });

  it('brings the lead-in of the code an anchor goes on from, however it announces it, before what follows', () => {
    const sources = [source(1, 'tool.md')];
    const doc = [
      mk(1, 0, 'The development version can be cloned and installed with', 0.2),
      { ...mk(1, 1, '$ git clone https://example.org/tool.git\n$ pip install ./tool', 0, 'code') },
      mk(1, 2, 'which also installs the test dependencies.', 1),
      mk(1, 3, 'The tests then run with pytest in a few minutes.', 0.9),
    ];
    // the lead-in is cut off before the code (no ":"): it is still the announcement the anchor's sentence starts
    // with, so it takes the room before the sentence after the anchor does
    expect(quoted(composeExtractiveAnswer(doc, sources, { allowCode: true, maxSentences: 3 }))).toEqual([
      'The development version can be cloned and installed with',
      '$ git clone https://example.org/tool.git\n$ pip install ./tool',
      'which also installs the test dependencies. [tool.md]',
    ]);
  });

  it("grows a procedure's passage through the command a step announces, not through a result it shows", () => {
    const sources = [source(1, 'tool.md')];
    const procedure = { kind: 'procedure', subject: [] } as unknown as QuestionIntent;
    const doc = (lead: string) => [
      mk(1, 0, lead, 1),
      { ...mk(1, 1, '$ ls -F\nplaene/\nplan-alt.txt', 0, 'code') },
      mk(1, 2, 'This lists the plans of the garden.', 0.1),
    ];
    // a step: the passage goes on past its command to the sentence leaning back on it
    expect(
      quoted(composeExtractiveAnswer(doc('List the plans you have with:'), sources, { intent: procedure })),
    ).toEqual([
      'List the plans you have with:',
      '$ ls -F\nplaene/\nplan-alt.txt',
      'This lists the plans of the garden. [tool.md]',
    ]);
    // a result shown: the block comes with it (a passage never ends on an announcement), nothing more
    expect(
      quoted(
        composeExtractiveAnswer(doc('Here are the plans after the copy:'), sources, { intent: procedure }),
      ),
    ).toEqual(['Here are the plans after the copy:', '$ ls -F\nplaene/\nplan-alt.txt\n[tool.md]']);
  });

  it('never opens a passage on a block without the sentence announcing it', () => {
    const sources = [source(1, 'tool.md')];
    const doc = [
      mk(1, 0, 'Check which version is installed with:', 0.2),
      { ...mk(1, 1, '$ tool --version', 0.5, 'code') },
      mk(1, 2, 'This prints the version number of the package.', 1),
    ];
    expect(quoted(composeExtractiveAnswer(doc, sources, { allowCode: true }))).toEqual([
      'Check which version is installed with:',
      '$ tool --version',
      'This prints the version number of the package. [tool.md]',
    ]);
    // no room for the announcement: the block before the anchor is left out
    expect(quoted(composeExtractiveAnswer(doc, sources, { allowCode: true, maxSentences: 2 }))).toEqual([
      'This prints the version number of the package. [tool.md]',
    ]);
  });

  it('sets two code blocks in a row one blank line apart, as a block after prose', () => {
    const answer = answerText([
      { kind: 'prose', text: 'Build and run it:' },
      { kind: 'code', text: 'make' },
      { kind: 'code', text: './run\n[a.md]', citation: '[a.md]' },
      { kind: 'prose', text: 'It prints the version. [b.md]' },
    ]);
    expect(answer).toBe('Build and run it:\n\nmake\n\n./run\n[a.md]\n\nIt prints the version. [b.md]');
  });

  it('reaches back to the sentence that opens the section of the best one (never a list item), and on from it', () => {
    const sources = [source(1, 'a.md')];
    const s = (index: number, text: string, score: number, kind: ScoredSentence['kind'] = 'paragraph') =>
      ({ ...mk(1, index, text, score, kind), ...(kind === 'heading' ? { score: 0 } : {}) }) as ScoredSentence;
    // under half the best score and no back-reference by its opening words: only its place brings it in
    const section = [
      s(0, 'Threads count', 0.9, 'heading'),
      s(1, 'By default, the backend uses one thread per logical core.', 0.45),
      s(2, 'You can call setThreadsCount before choosing the backend to change the number.', 1),
      s(3, 'Installation is described in the next chapter of this guide.', 0.1),
    ];
    expect(composeExtractiveAnswer(section, sources).text).toBe(
      'By default, the backend uses one thread per logical core. You can call setThreadsCount before choosing the backend to change the number. [a.md]',
    );
    // a best sentence that opens its section brings the paragraph after it
    const opening = [
      s(0, 'Search index', 0.9, 'heading'),
      s(1, 'Before searching, we build a search index over the knowledge base.', 1),
      s(2, 'An index keeps the embeddings and finds the nearest chunks quickly.', 0.3),
      s(3, 'A small index fits in memory.', 0.1),
    ];
    expect(composeExtractiveAnswer(opening, sources).text).toBe(
      'Before searching, we build a search index over the knowledge base. An index keeps the embeddings and finds the nearest chunks quickly. [a.md]',
    );
    // in the middle of a section, or before a list item, it does not
    const later = opening.map((x) => (x.index === 0 ? s(0, 'Indexes are kept on disk.', 0.1) : x));
    expect(composeExtractiveAnswer(later, sources).text).toBe(
      'Before searching, we build a search index over the knowledge base. [a.md]',
    );
    const item = opening.map((x) => (x.index === 2 ? { ...x, kind: 'list-item' as const } : x));
    expect(composeExtractiveAnswer(item, sources).text).toBe(
      'Before searching, we build a search index over the knowledge base. [a.md]',
    );
    // the same predecessor in the middle of a section stays out
    const middle = section.map((x) => (x.index === 0 ? s(0, 'Threads are pooled by the runtime.', 0.1) : x));
    expect(composeExtractiveAnswer(middle, sources).text).toBe(
      'You can call setThreadsCount before choosing the backend to change the number. [a.md]',
    );
    // a list item under a heading is an entry of the list, not what the section is about
    const items = section.map((x) => (x.index === 1 ? { ...x, kind: 'list-item' as const } : x));
    expect(composeExtractiveAnswer(items, sources).text).toBe(
      'You can call setThreadsCount before choosing the backend to change the number. [a.md]',
    );
  });
});

describe('the passage brings what the question asks for', () => {
  const sources = [source(1, 'a.md')];
  const s = (index: number, text: string, score: number, extra: Partial<ScoredSentence> = {}) =>
    ({
      source: 1,
      index,
      text,
      score,
      kind: 'paragraph',
      start: 0,
      end: text.length,
      dense: 0,
      lexical: 0.5,
      novelty: 1,
      relation: false,
      concepts: [],
      boilerplate: false,
      vector: new Float32Array(),
      ...extra,
    }) as ScoredSentence;
  const texts = (a: { sentences: readonly { text: string }[] }) => a.sentences.map((x) => x.text);

  it('reaches to the next sentence that holds the asked-for relation when the best one does not', () => {
    const procedure = { kind: 'procedure' as const, subject: [] };
    const sentences = [
      s(0, 'Perturbations are processed one after another by default.', 1, { concepts: [0] }),
      s(1, 'Pass perturbations_per_eval to process several in one batch.', 0.1, { relation: true }),
      s(2, 'Memory grows with the batch.', 0.1, { relation: true }),
    ];
    expect(texts(composeExtractiveAnswer(sentences, sources, { intent: procedure }))).toEqual([
      'Perturbations are processed one after another by default.',
      'Pass perturbations_per_eval to process several in one batch. [a.md]',
    ]);
    // without an intent there is no relation to complete
    expect(texts(composeExtractiveAnswer(sentences, sources))).toHaveLength(1);
  });

  it('reaches to a neighbour that brings a question concept the passage lacks, also one sentence on', () => {
    const comparison = { kind: 'comparison' as const, subject: [] };
    const answer = composeExtractiveAnswer(
      [
        s(0, 'Retrievers fetch nodes.', 0.1, { concepts: [] }),
        s(1, 'VectorRetriever will fetch the top-k most similar nodes.', 1, { concepts: [1] }),
        s(2, 'Ideal for dense retrieval.', 0.1),
        s(3, 'SummaryRetriever will fetch all nodes no matter the query.', 0.5, { concepts: [0] }),
        s(4, 'VectorRetriever is the default.', 0.4, { concepts: [1] }),
      ],
      sources,
      { intent: comparison },
    );
    // the first sentence and the last bring nothing new: they stay out
    expect(texts(answer)).toEqual([
      'VectorRetriever will fetch the top-k most similar nodes.',
      'Ideal for dense retrieval.',
      'SummaryRetriever will fetch all nodes no matter the query. [a.md]',
    ]);
    expect(answer.sentences.map((x) => x.highlight)).toEqual([true, false, false]);
  });

  it('a second source joins below 75% of the best score only when it completes the first passage', () => {
    const two = [source(1, 'a.md'), source(2, 'b.md')];
    const reason = { kind: 'reason' as const, subject: [] };
    const first = s(0, 'Relevance is conserved from layer to layer.', 1, { concepts: [0] });
    const second = (extra: Partial<ScoredSentence>, score = 0.6) =>
      ({
        ...s(0, 'Negative evidence is kept apart by the beta term.', score, extra),
        source: 2,
      }) as ScoredSentence;
    const sources2 = (x: ScoredSentence) =>
      texts(composeExtractiveAnswer([first, x], two, { intent: reason }));
    // a question concept the first passage lacks
    expect(sources2(second({ concepts: [1] }))).toHaveLength(2);
    // the asked-for relation, which the first passage lacks
    expect(sources2(second({ concepts: [0], relation: true }))).toHaveLength(2);
    // nothing the first passage lacks: only at 75% of the best score
    expect(sources2(second({ concepts: [0] }))).toHaveLength(1);
    expect(sources2(second({ concepts: [0] }, 0.8))).toHaveLength(2);
    // a completing passage joins from 40% of the best score (one that only adds needs 75%) ...
    expect(sources2(second({ concepts: [1] }, 0.45))).toHaveLength(2);
    expect(sources2(second({ concepts: [0], relation: true }, 0.41))).toHaveLength(2);
    expect(sources2(second({ concepts: [0] }, 0.45))).toHaveLength(1);
    // ... and below it, never
    expect(sources2(second({ concepts: [1], relation: true }, 0.39))).toHaveLength(1);
    // the relation completes nothing when the first passage holds it already
    const related = { ...first, relation: true };
    expect(
      texts(
        composeExtractiveAnswer([related, second({ concepts: [0], relation: true })], two, {
          intent: reason,
        }),
      ),
    ).toHaveLength(1);
  });

  it('of two passages the one holding the asked-for relation stands first', () => {
    const two = [source(1, 'a.md'), source(2, 'b.md')];
    const procedure = { kind: 'procedure' as const, subject: [] };
    const note = s(0, 'Beetwerk is a set of scripts for raised beds in shared gardens.', 1, {
      concepts: [0, 2],
    });
    const step = (relation: boolean) =>
      ({
        ...s(0, 'Run gartenplan neu with the number of beds to start a plan.', 0.9, {
          concepts: [0, 1],
          relation,
        }),
        source: 2,
      }) as ScoredSentence;
    // the instruction answers: it stands first though the note about another tool scored higher
    expect(texts(composeExtractiveAnswer([note, step(true)], two, { intent: procedure }))).toEqual([
      'Run gartenplan neu with the number of beds to start a plan. [b.md]',
      'Beetwerk is a set of scripts for raised beds in shared gardens. [a.md]',
    ]);
    // neither holds it, or the first does: by score
    for (const [first, second] of [
      [note, step(false)],
      [{ ...note, relation: true }, step(true)],
    ] as const)
      expect(texts(composeExtractiveAnswer([first, second], two, { intent: procedure }))[0]).toBe(
        'Beetwerk is a set of scripts for raised beds in shared gardens. [a.md]',
      );
  });

  it('a second source that brings only the relation the first lacks must name half as much of the question', () => {
    // issue 24: "When should I use alpha-beta instead of epsilon?" got the composites list (alpha-beta and
    // epsilon, no "when") and then a reason about the stabilizer that names only epsilon
    const two = [source(1, 'a.md'), source(2, 'b.md')];
    const choice = { kind: 'comparison' as const, subject: [], choice: true };
    const list = s(
      0,
      'EpsilonAlpha2Beta1 uses AlphaBeta for convolutional and Epsilon for dense layers.',
      1,
      {
        lexical: 1,
        concepts: [0, 1, 2],
      },
    );
    const second = (extra: Partial<ScoredSentence>) =>
      ({
        ...s(0, 'Epsilon uses another argument name due to its different intention.', 0.8, {
          relation: true,
          concepts: [2],
          ...extra,
        }),
        source: 2,
      }) as ScoredSentence;
    const count = (x: ScoredSentence) =>
      texts(composeExtractiveAnswer([list, x], two, { intent: choice })).length;
    // a fifth of the question, no concept the list lacks: about something else, even at 80% of the best score
    expect(count(second({ lexical: 0.2 }))).toBe(1);
    // half of the list's share of the question: it joins
    expect(count(second({ lexical: 0.5 }))).toBe(2);
    // a concept the list lacks completes it whatever its share
    expect(count(second({ lexical: 0.2, concepts: [3] }))).toBe(2);
    // without the relation it joins as nearly as good (it adds, and the rule is about the relation alone)
    expect(count(second({ lexical: 0.2, relation: false }))).toBe(2);
  });

  it("a caller's relativeCutoff above 0.75 also raises the floor of a completing second passage", () => {
    const two = [source(1, 'a.md'), source(2, 'b.md')];
    const reason = { kind: 'reason' as const, subject: [] };
    const first = s(0, 'Relevance is conserved from layer to layer.', 1, { concepts: [0] });
    const completing = (score: number) =>
      ({
        ...s(0, 'Negative evidence is kept apart by the beta term.', score, { concepts: [1] }),
        source: 2,
      }) as ScoredSentence;
    const count = (score: number, relativeCutoff?: number) =>
      texts(
        composeExtractiveAnswer([first, completing(score)], two, {
          intent: reason,
          ...(relativeCutoff !== undefined ? { relativeCutoff } : {}),
        }),
      ).length;
    // default (and any cutoff up to 0.75): a completing passage joins from 40% of the best score
    expect(count(0.45)).toBe(2);
    expect(count(0.45, 0.7)).toBe(2);
    expect(count(0.35)).toBe(1);
    // a cutoff of 0.9 asks for 0.9 of a passage that only adds, and 0.55 of one that completes
    expect(count(0.5, 0.9)).toBe(1);
    expect(count(0.6, 0.9)).toBe(2);
    expect(count(0.95, 1)).toBe(2);
    expect(count(0.6, 1)).toBe(1);
  });

  it('a passage starts at the start of a sentence: the rest of one brings what it goes on from, or stays out', () => {
    const code = (index: number, text: string) => s(index, text, 0, { kind: 'code' });
    const run = [
      s(0, 'The example can then be run using:', 0.2),
      code(1, '$ python feed_forward.py --composite epsilon_gamma_box'),
      s(2, 'which computes the heatmaps with the chosen rule and stores them in the results folder.', 1),
      s(3, 'Heatmaps of other models are shown further below.', 0.1),
    ];
    // the best sentence goes on from the code block: the block and the sentence announcing it come along
    expect(texts(composeExtractiveAnswer(run, sources))).toEqual([
      'The example can then be run using:',
      '$ python feed_forward.py --composite epsilon_gamma_box',
      'which computes the heatmaps with the chosen rule and stores them in the results folder. [a.md]',
    ]);
    // taken in as context for what it adds (a question concept), it would open the passage mid-sentence: it stays out
    const comparison = { kind: 'comparison' as const, subject: [] };
    const context = [
      ...run.slice(0, 2),
      s(2, 'which computes the heatmaps with the chosen rule and stores them in the results folder.', 0.3, {
        concepts: [1],
      }),
      s(3, 'The bias is left out of the computation by passing --no-bias.', 1, { concepts: [0] }),
    ];
    expect(texts(composeExtractiveAnswer(context, sources, { intent: comparison }))).toEqual([
      'The bias is left out of the computation by passing --no-bias. [a.md]',
    ]);
    // so does one that scores nearly as well as the best sentence
    const strong = context.map((x) => (x.index === 2 ? { ...x, score: 0.9 } : x));
    expect(texts(composeExtractiveAnswer(strong, sources))).toEqual([
      'The bias is left out of the computation by passing --no-bias. [a.md]',
    ]);
    // a paragraph that stops mid-sentence (a PDF line cut) goes on into the next; a lower-case word after a full
    // stop starts a sentence of its own
    const cut = [
      s(0, 'To compute the attributions for a batch, the explainer first', 1),
      s(1, 'splits the inputs into batches of the given size and runs the model once per batch.', 0.1),
      s(2, 'Memory grows with the batch size.', 0.1),
    ];
    expect(texts(composeExtractiveAnswer(cut, sources))).toEqual([
      'To compute the attributions for a batch, the explainer first',
      'splits the inputs into batches of the given size and runs the model once per batch. [a.md]',
    ]);
    const stopped = cut.map((x) => (x.index === 0 ? { ...x, text: `${x.text} reads them.` } : x));
    expect(texts(composeExtractiveAnswer(stopped, sources))).toHaveLength(1);
  });

  it('one of two things set side by side brings the other, except for a definition', () => {
    const pair = [
      s(0, 'Users can look at explanations of either kind.', 0.1),
      s(1, 'Global explanations list the features that drive the model overall.', 1),
      s(2, 'Local explanations show the features behind a single prediction.', 0.2),
      s(3, 'The dashboard also shows error rates.', 0.1),
    ];
    const procedure = { kind: 'procedure' as const, subject: [] };
    expect(texts(composeExtractiveAnswer(pair, sources, { intent: procedure }))).toEqual([
      'Global explanations list the features that drive the model overall.',
      'Local explanations show the features behind a single prediction. [a.md]',
    ]);
    // the second of the pair brings the first
    const second = pair.map((x) => ({ ...x, score: x.index === 2 ? 1 : 0.1 }));
    expect(texts(composeExtractiveAnswer(second, sources, { intent: procedure }))).toEqual([
      'Global explanations list the features that drive the model overall.',
      'Local explanations show the features behind a single prediction. [a.md]',
    ]);
    // a definition asks for one thing: the next entry of a glossary stays out
    const definition = { kind: 'definition' as const, subject: [] };
    expect(texts(composeExtractiveAnswer(pair, sources, { intent: definition }))).toHaveLength(1);
    // the same subject going on ("The model is ... / The model uses ...") is no pair
    const same = pair.map((x) =>
      x.index === 2 ? { ...x, text: 'Global explanations are computed once per model.' } : x,
    );
    expect(texts(composeExtractiveAnswer(same, sources, { intent: procedure }))).toHaveLength(1);
  });

  it('a sentence opening with "The latter" or "In the meantime" brings the one before', () => {
    for (const opening of ['The latter', 'In the meantime,', 'The command above']) {
      const answer = composeExtractiveAnswer(
        [
          s(0, 'You can set the number of steps with n_steps.', 0.1),
          s(1, `${opening} trades speed for accuracy.`, 1),
        ],
        sources,
      );
      expect(texts(answer)).toHaveLength(2);
    }
  });

  it('a connective after the first words ("Fehler sind jedoch ...", "Errors, however, ...") brings the one before', () => {
    for (const text of [
      'Fehler sind jedoch oft nicht gleichmäßig über die Daten verteilt.',
      // not "Das Modell ...": an opening "Das" leans back by itself, whatever follows
      'Ein Modell ist daher in manchen Regionen unzuverlässig.',
      'Errors, however, are rarely spread evenly.',
      'The dashboard, as a result, shows each cohort.',
    ]) {
      const answer = composeExtractiveAnswer(
        [s(0, 'Ein Modell mit 89 % Genauigkeit gilt als gut.', 0.1), s(1, text, 1)],
        sources,
      );
      expect(texts(answer), text).toHaveLength(2);
    }
    // the connective must stand among the first words, and a plain sentence does not lean back
    for (const text of [
      'Kennzahlen wie Genauigkeit, Präzision, Recall und F1 messen das Modell jedoch nur im Mittel.',
      'Errors are rarely spread evenly.',
    ]) {
      const answer = composeExtractiveAnswer(
        [s(0, 'Ein Modell mit 89 % Genauigkeit gilt als gut.', 0.1), s(1, text, 1)],
        sources,
      );
      expect(texts(answer), text).toHaveLength(1);
    }
  });

  it('a connective that joins two clauses of its own sentence ("..., jedoch ungenau") does not bring the one before', () => {
    for (const text of [
      'Ein Verfahren ist schnell, jedoch ungenau.',
      'Tiefe Netze sind langsam, daher dauert das Training lange.',
      'Ein Modell ist klein und daher schnell.',
    ]) {
      const answer = composeExtractiveAnswer(
        [s(0, 'Ein Modell mit 89 % Genauigkeit gilt als gut.', 0.1), s(1, text, 1)],
        sources,
      );
      expect(texts(answer), text).toHaveLength(1);
    }
    // a relative clause holds the connective of its sentence's own reference back
    const answer = composeExtractiveAnswer(
      [
        s(0, 'Ein Modell mit 89 % Genauigkeit gilt als gut.', 0.1),
        s(1, 'Fehler, die jedoch selten sind, zählen mit.', 1),
      ],
      sources,
    );
    expect(texts(answer)).toHaveLength(2);
  });

  it('the fix after the problem ("To resolve the issue ...", "Um das Problem zu ...") joins the passage', () => {
    for (const fix of [
      'To resolve the issue you can turn the cache off.',
      'To avoid this, pass a smaller batch.',
      'Um das Problem zu lösen, schalten Sie den Cache aus.',
    ]) {
      const answer = composeExtractiveAnswer(
        [
          s(0, 'In eval mode the backward pass fails with a cache error.', 1, { concepts: [0] }),
          s(1, fix, 0.05),
          s(2, 'The cache was added in version 2.', 0.05),
        ],
        sources,
      );
      expect(texts(answer), fix).toEqual([
        'In eval mode the backward pass fails with a cache error.',
        `${fix} [a.md]`,
      ]);
    }
    // a plain instruction after it that does not refer back stays out
    const plain = composeExtractiveAnswer(
      [
        s(0, 'In eval mode the backward pass fails with a cache error.', 1),
        s(1, 'To train, call fit.', 0.05),
      ],
      sources,
    );
    expect(texts(plain)).toHaveLength(1);
  });

  it('a German word opening with "Er" and an umlaut ("Eröffnet", "Erübrigt") is no pronoun: it does not refer back', () => {
    for (const text of [
      'Eröffnet wird der Index mit RagIndex.open.',
      'Erübrigt sich das Neuberechnen, bleibt der Index gleich.',
    ]) {
      const answer = composeExtractiveAnswer(
        [s(0, 'Der Index speichert die Vektoren im Arbeitsspeicher.', 0.1), s(1, text, 1)],
        sources,
      );
      expect(texts(answer), text).toEqual([`${text} [a.md]`]);
    }
    // the pronoun itself and openings ending in "für" do
    for (const opening of ['Er', 'Dafür', 'Hierfür']) {
      const answer = composeExtractiveAnswer(
        [
          s(0, 'Der Index speichert die Vektoren im Arbeitsspeicher.', 0.1),
          s(1, `${opening} braucht etwa 4 MB pro tausend Passagen.`, 1),
        ],
        sources,
      );
      expect(texts(answer), opening).toHaveLength(2);
    }
  });
});

describe('LLM answers and grounding (fake servers on 127.0.0.1)', () => {
  const chat = (content: string) => ({
    id: 'x',
    object: 'chat.completion',
    created: 0,
    model: 'm',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  });

  it('a generated sentence the sources do not support is flagged; a faithful one is supported', async () => {
    const reply =
      'CRP splits the heatmap into one heatmap per concept by masking the relevance flow of single channels [1]. ' +
      'CRP was invented on the moon in 1850 by Napoleon [1].';
    const server = await startFakeServer((req, res) =>
      req.url === '/v1/chat/completions' ? json(res, 200, chat(reply)) : json(res, 404, {}),
    );
    try {
      const generator = createLlmGenerator({
        provider: 'openai',
        model: 'gpt-test',
        baseURL: `${server.url}/v1`,
        env: { OPENAI_API_KEY: 'sk-openai-secret-1' },
      });
      const a = await engine.ask('How does CRP differ from LRP?', { generator, explain: false });
      expect(a.mode).toBe('openai:gpt-test');
      const req = server.requests[0]!;
      expect(req.headers.authorization).toBe('Bearer sk-openai-secret-1');
      const prompt = (req.body as { messages: { role: string; content: string }[] }).messages[1]!.content;
      expect(prompt).toContain('[1] [faq.md] CRP FAQ > How does CRP differ from LRP? (English)');
      expect(prompt).toContain('However, CRP splits that heatmap');
      expect(prompt).toContain('```\n# load CRP toolbox\nattribution = CondAttribution(model)\n```');
      expect(prompt).not.toContain('```python');
      expect(prompt).toMatch(/Answer in English\.$/);
      expect(a.sentences.map((s) => s.label)).toEqual(['supported', 'unsupported']);
      expect(a.sentences[0]!.support!.score).toBeGreaterThanOrEqual(0.5);
      expect(a.sentences[1]!.notes).toEqual(['numbers not in any source: 1850', 'no source text says this']);
      expect(a.sentences[1]!.supported).toBe(false);
      expect(a.grounded).toBe(false);
      expect(a.answer).toContain('single channels [faq.md].');
      expect(JSON.stringify(a)).not.toContain('sk-openai-secret-1');
    } finally {
      await server.close();
    }
  });

  it('Groq is the default when GROQ_API_KEY is set (OpenAI adapter); provider errors never show the key', async () => {
    const server = await startFakeServer((req, res) =>
      json(res, 401, { error: { message: `Invalid API key ${String(req.headers.authorization)}` } }),
    );
    try {
      const env = { GROQ_API_KEY: 'gsk-groq-secret-2', GROQ_BASE_URL: `${server.url}/openai/v1` };
      expect(defaultGenerator({})).toBeUndefined();
      const generator = defaultGenerator(env)!;
      expect(generator.name).toBe('groq:llama-3.1-8b-instant');
      const err = await engine.ask('shard size?', { generator, explain: false }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'provider-failed' });
      expect(String((err as Error).message)).not.toContain('gsk-groq-secret-2');
      expect(server.requests[0]!.url).toBe('/openai/v1/chat/completions');
      expect(server.requests[0]!.headers.authorization).toBe('Bearer gsk-groq-secret-2');
    } finally {
      await server.close();
    }
  });

  it('RagEngine.open picks Groq from the environment unless told generator: null', async () => {
    const saved = process.env.GROQ_API_KEY;
    process.env.GROQ_API_KEY = 'gsk-test';
    try {
      const e = await RagEngine.open({ dir: path.join(root, 'index'), embedding: new CountingEmbedding() });
      expect(e.generator?.name).toBe('groq:llama-3.1-8b-instant');
      const off = await RagEngine.open({
        dir: path.join(root, 'index'),
        embedding: new CountingEmbedding(),
        generator: null,
      });
      expect(off.generator).toBeUndefined();
    } finally {
      if (saved === undefined) delete process.env.GROQ_API_KEY;
      else process.env.GROQ_API_KEY = saved;
    }
  });

  it('a missing key is a provider-config error naming the variable; a server that is down is unreachable', async () => {
    expect(() => createLlmGenerator({ provider: 'groq', env: {} })).toThrow(/GROQ_API_KEY/);
    expect(() => createLlmGenerator({ provider: 'nope' as 'groq' })).toThrow(/groq, openai, ollama/);
    const server = await startFakeServer((_req, res) => json(res, 200, {}));
    const url = server.url;
    await server.close();
    const generator = createLlmGenerator({ provider: 'ollama', model: 'x', baseURL: url });
    // the error says where the model was asked and what to do, not only "fetch failed"
    await expect(engine.ask('shard size?', { generator, explain: false })).rejects.toMatchObject({
      code: 'unreachable',
      message: `ollama:x did not answer (fetch failed); asked at ${url}: start Ollama there (\`ollama serve\`) or set OLLAMA_HOST to the address it listens on.`,
    });
    const openai = createLlmGenerator({
      provider: 'openai',
      model: 'm',
      baseURL: url,
      env: { OPENAI_API_KEY: 'k' },
    });
    await expect(engine.ask('shard size?', { generator: openai, explain: false })).rejects.toMatchObject({
      code: 'unreachable',
      message: expect.stringMatching(
        new RegExp(
          `^openai:m did not answer \\(.+\\); asked at ${url}: check the network, or set OPENAI_BASE_URL`,
        ),
      ),
    });
  });

  it('Ollama adapter talks to /api/chat', async () => {
    const server = await startFakeServer((req, res) => {
      if (req.url !== '/api/chat') return json(res, 404, { error: 'unknown' });
      json(res, 200, {
        model: 'llama-test',
        created_at: new Date(0).toISOString(),
        message: { role: 'assistant', content: 'Shards are 4 MB by default [1].' },
        done: true,
        done_reason: 'stop',
      });
    });
    try {
      const generator = createLlmGenerator({ provider: 'ollama', model: 'llama-test', baseURL: server.url });
      const a = await engine.ask('What shard size does the converter create by default?', {
        generator,
        explain: false,
      });
      expect(a.mode).toBe('ollama:llama-test');
      expect(a.answer).toBe(`Shards are 4 MB by default ${a.sources[0]!.citation}.`);
      expect(a.sentences[0]!.label).toBe('supported');
      expect((server.requests[0]!.body as { model: string }).model).toBe('llama-test');
    } finally {
      await server.close();
    }
  });

  it('parses [n] marks, strips only citation marks, redacts secrets', () => {
    const sources = [source(1, 'a.pdf', 'x', 3), source(2, 'b.md')];
    const p = parseGeneratedAnswer('First claim. [1] Second claim [1, 2]. Third [9].', sources);
    expect(p.sentences.map((s) => s.citations)).toEqual([[1], [1, 2], []]);
    expect(p.text).toBe('First claim [a.pdf, p. 3]. Second claim [a.pdf, p. 3] [b.md]. Third.');
    expect(stripCitations('See [the guide] and [Footnote: x] [2] [a.pdf, p. 3].', ['[a.pdf, p. 3]'])).toBe(
      'See [the guide] and [Footnote: x].',
    );
    expect(redact('key sk-123456 leaked', ['sk-123456'])).toBe('key *** leaked');
    expect(buildPrompt('Wie?', [source(1, 'a.md', 'Text')], 'de')).toMatch(/Answer in German\.$/);
  });

  it('marks a footnote in the prompt as one', () => {
    const text = 'The tool writes the archive.\n\nOnly when asked to.';
    const prompt = buildPrompt('What does the tool write?', [
      {
        ...source(1, 'a.pdf', text, 2),
        blocks: [
          { kind: 'paragraph', start: 0, end: 28 },
          { kind: 'note', start: 30, end: text.length },
        ],
      },
    ]);
    expect(prompt).toContain('The tool writes the archive.\n\n[Footnote: Only when asked to.]');
  });
});

describe('the languages an answer quotes', () => {
  it("lists the quoted sources' languages, first quoted first; code only when no prose is quoted", async () => {
    const { quotedLanguagesOf } = await import('../src/rag-engine.js');
    const sources = [{ language: 'de' as const }, { language: 'en' as const }, { language: 'de' as const }];
    const quote = (source: number) => ({ source, start: 0, end: 1 });
    expect(
      quotedLanguagesOf(
        [
          { kind: 'code', quote: quote(1) },
          { kind: 'prose', quote: quote(2) },
          { kind: 'prose' },
          { kind: 'prose', quote: quote(3) },
          { kind: 'prose', quote: quote(2) },
        ],
        sources,
      ),
    ).toEqual(['en', 'de']);
    // a German code block beside English prose is no German quotation
    expect(
      quotedLanguagesOf(
        [
          { kind: 'prose', quote: quote(2) },
          { kind: 'code', quote: quote(1) },
        ],
        sources,
      ),
    ).toEqual(['en']);
    expect(quotedLanguagesOf([{ kind: 'code', quote: quote(1) }], sources)).toEqual(['de']);
    expect(quotedLanguagesOf([{ kind: 'prose' }], sources)).toEqual([]);
  });
});
