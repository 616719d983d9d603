import { describe, expect, it } from 'vitest';
import { announcesStep } from '../src/answer/announcement.js';
import {
  aboutSubject,
  asksForName,
  definesSubject,
  documentKindConcepts,
  documentNamingWords,
  holdsRelation,
  namingConcepts,
  questionIntent,
  relationClarity,
  subjectAsWritten,
} from '../src/answer/question-intent.js';
import { isBoilerplate, scoreSourceSentences, translatedIntent } from '../src/answer/sentence-scorer.js';
import {
  analyzeQuery,
  composeExtractiveAnswer,
  dot,
  HashEmbedding,
  QueryTranslator,
  type Source,
} from '../src/index.js';
import { glossOnly, glossSentence } from '../src/translate/gloss.js';
import { TINY_DICTIONARY } from './helpers/corpus.js';

describe('what a question asks for', () => {
  it('tells definitions, comparisons, procedures, reasons, lists and numbers apart', () => {
    const kind = (q: string) => questionIntent(q).kind;
    expect(questionIntent('What is a Node in LlamaIndex?')).toEqual({
      kind: 'definition',
      subject: ['node'],
    });
    expect(questionIntent('In Debian, who is a sponsor?')).toEqual({
      kind: 'definition',
      subject: ['sponsor'],
    });
    expect(questionIntent('Was ist ein Mentor bei Debian?')).toEqual({
      kind: 'definition',
      subject: ['mentor'],
    });
    expect(kind('When should I use alpha-beta instead of epsilon?')).toBe('comparison');
    expect(kind('Worin unterscheiden sich globale und lokale Erklärungen?')).toBe('comparison');
    expect(kind('How do I set the target argument?')).toBe('procedure');
    expect(kind('Why does Zennit need canonizers?')).toBe('reason');
    expect(kind('Wozu braucht man pbuilder?')).toBe('reason');
    expect(kind('Which vector databases are popular?')).toBe('list');
    expect(kind('How many threads does the backend use?')).toBe('number');
    expect(kind('What weight shard size does the converter write?')).toBe('number');
    expect(kind('Tell me about LRP.')).toBe('other');
  });

  it('finds the sentence that holds the asked-for relation, not one that repeats the words', () => {
    const def = questionIntent('What is a Node in LlamaIndex?');
    expect(holdsRelation('A Node is the atomic unit of data in LlamaIndex.', def)).toBe(true);
    expect(
      holdsRelation('ZBox, an LRP rule for bounded inputs.', questionIntent('What is the ZBox rule?')),
    ).toBe(true);
    expect(
      holdsRelation('Sponsor: Eine Person, die Betreuern hilft.', questionIntent('Who is a sponsor?')),
    ).toBe(true);
    expect(holdsRelation('Every document is parsed into many nodes.', def)).toBe(false);
    const why = questionIntent('Why are embeddings stored in a vector database?');
    expect(holdsRelation('We store them there because models accept few tokens.', why)).toBe(true);
    expect(holdsRelation('Embeddings are stored in a vector database.', why)).toBe(false);
    const cmp = questionIntent('When should I use alpha-beta instead of epsilon?');
    expect(holdsRelation('Use alpha-beta when negative evidence matters.', cmp)).toBe(true);
    expect(holdsRelation('Six composites are built in.', cmp)).toBe(false);
    expect(holdsRelation('Anything.', questionIntent('Tell me about LRP.'))).toBe(false);
  });

  it('reads "what does X do" as a definition of X, and "wofür" as a reason', () => {
    expect(questionIntent('What does a response synthesizer do?')).toEqual({
      kind: 'definition',
      subject: ['response', 'synthesizer'],
    });
    // linking words of a long subject do not name it
    expect(questionIntent('What does the heat map of the dashboard show?').subject).toEqual([
      'heat',
      'map',
      'dashboard',
    ]);
    expect(questionIntent('What do I need before I can start?').kind).not.toBe('definition');
    expect(questionIntent('Wofür braucht man das Argument target?').kind).toBe('reason');
    // a question word ending in ß is a word of its own too (\b took the ß for a border only before a letter)
    expect(questionIntent('Wie groß ist der Index auf der Platte?').kind).toBe('number');
    // a sentence that opens with the subject says what it does
    const does = questionIntent('What does the SummaryRetriever do?');
    expect(holdsRelation('SummaryRetriever will fetch all nodes.', does)).toBe(true);
    expect(holdsRelation('The SummaryRetriever returns every node.', does)).toBe(true);
    expect(holdsRelation('All nodes are fetched by the SummaryRetriever.', does)).toBe(false);
  });

  it('finds the subject and the quantity as words of their own, not inside names', () => {
    const lintian = questionIntent('Was ist lintian?');
    expect(holdsRelation('lintian ist ein Paket-Prüfer.', lintian)).toBe(true);
    expect(holdsRelation('Paket.lintian-overrides ist für das Binärpaket.', lintian)).toBe(false);
    const size = questionIntent('What shard size does the converter produce?');
    expect(size.kind).toBe('number');
    expect(holdsRelation('It creates shards of 4 MB by default.', size)).toBe(true);
    expect(holdsRelation('Version 2.15 works.', size)).toBe(true);
    expect(holdsRelation('All weights go to group1-shard1of1.bin in mixed4d.', size)).toBe(false);
  });

  it('never lets navigation stand as an answer', () => {
    expect(isBoilerplate('2.8 Das erste nicht native Debian-Paket . . . . . . . . 12')).toBe(true);
    expect(isBoilerplate('View colab tutorial | View source | Paper')).toBe(true);
    expect(
      isBoilerplate('License: MIT (see LICENSES/ in this corpus). Converted to PDF for the corpus.'),
    ).toBe(true);
    expect(isBoilerplate('The epsilon rule adds a small term to the denominator.')).toBe(false);
  });

  it("takes a caption pointing at the page's picture or video for navigation, not an instruction", () => {
    expect(
      isBoilerplate('Klicken Sie auf das Bild oben, um das Video anzusehen: Ein Kurs über Kacheln'),
    ).toBe(true);
    expect(isBoilerplate('Click the thumbnail below to watch the talk on tiling.')).toBe(true);
    expect(isBoilerplate('Watch the video for a tour of the garden planner.')).toBe(true);
    // an instruction about an image in the program, and a sentence about videos, are no pointers at the page
    expect(isBoilerplate('Click Save to store the image in the project folder.')).toBe(false);
    expect(isBoilerplate('The planner exports a video of the growing garden.')).toBe(false);
  });
});

describe('a sentence that announces a command', () => {
  // a step whose verb stands where the instruction pattern does not look ("..., können Sie ... wie folgt anlegen:")
  const step = 'Falls Sie einen Garten planen wollen, können Sie den Plan wie folgt anlegen:';
  const command = '$ gartenplan neu --beete 4';
  const source = (lead: string, withCode: boolean, block = command): Source => {
    const text = `${lead}\n\n${block}\n\nDer Plan liegt danach im Ordner plaene.`;
    const at = lead.length + 2;
    return {
      n: 1,
      chunkId: 'c',
      file: 'garten.md',
      title: 'Gartenplaner',
      language: 'de',
      citation: '[garten.md]',
      score: 1,
      denseScore: 1,
      lexicalScore: 1,
      text,
      blocks: [
        { kind: 'paragraph', start: 0, end: lead.length },
        { kind: withCode ? 'code' : 'paragraph', start: at, end: at + block.length },
        { kind: 'paragraph', start: at + block.length + 2, end: text.length },
      ],
    };
  };
  const relationOf = async (question: string, withCode: boolean, lead = step, block = command) => {
    const embedding = new HashEmbedding({ dimensions: 64 });
    const [qv] = await embedding.embed([question]);
    const scored = await scoreSourceSentences(
      question,
      qv!,
      analyzeQuery(question),
      [source(lead, withCode, block)],
      embedding,
    );
    return scored.find((s) => s.text === lead)!.relation;
  };
  const how = 'Wie lege ich einen Gartenplan an?';

  it('is an instruction of a procedure when a code block follows it, however its verb stands', async () => {
    expect(holdsRelation(step, questionIntent(how))).toBe(false);
    expect(await relationOf(how, true)).toBe(true);
    // no command after it: the colon alone says nothing
    expect(await relationOf(how, false)).toBe(false);
    // announced by its words, without a colon (the scorer read only ":" before; the window read both)
    expect(await relationOf(how, true, 'Einen Plan für vier Beete erstellen Sie wie folgt.')).toBe(true);
    // prose cut off before the code keeps it in a window, but gives no step
    expect(await relationOf(how, true, 'Der Plan für vier Beete entsteht dann mit')).toBe(false);
    // and for another kind of question the command is no relation
    expect(await relationOf('Warum braucht man einen Gartenplan?', true)).toBe(false);
  });

  it('is a prose sentence of the same chunk as the code', async () => {
    const embedding = new HashEmbedding({ dimensions: 64 });
    const [qv] = await embedding.embed([how]);
    const relationIn = async (sources: Source[]) =>
      (await scoreSourceSentences(how, qv!, analyzeQuery(how), sources, embedding)).find(
        (s) => s.text === step,
      )!.relation;
    // a heading that ends in ":" names a section, it gives no step
    const headed = source(step, true);
    expect(
      await relationIn([
        { ...headed, blocks: [{ ...headed.blocks![0]!, kind: 'heading' }, ...headed.blocks!.slice(1)] },
      ]),
    ).toBe(false);
    // the chunk ends with the sentence; the next source's code is another passage's
    const alone = {
      ...source(step, false),
      text: step,
      blocks: [{ kind: 'paragraph' as const, start: 0, end: step.length }],
    };
    const code = {
      ...source(step, true),
      n: 2,
      chunkId: 'd',
      text: command,
      blocks: [{ kind: 'code' as const, start: 0, end: command.length }],
    };
    expect(await relationIn([alone, code])).toBe(false);
  });

  it('is no instruction when it states what the step before did and the block shows the result', async () => {
    // a demonstrative looking back at the last command, then its listing (no reader, no modal)
    const result = 'Dieser Aufruf von gartenplan erstellt eine Kopie des alten Plans im Ordner darüber:';
    expect(await relationOf(how, true, result, '$ ls -F\nplaene/\nplan-alt.txt')).toBe(false);
    expect(await relationOf(how, true, 'So sieht der neue Gartenplan danach aus:')).toBe(false);
    // output announced, though the reader is addressed
    expect(await relationOf(how, true, 'Als Ausgabe erhalten Sie die Liste der Beete:')).toBe(false);
    // a demonstrative with a modal is a step ("Dies kann wie folgt ... erledigt werden:")
    expect(await relationOf(how, true, 'Dies kann für einen Gartenplan wie folgt erledigt werden:')).toBe(
      true,
    );
  });
});

describe('whether a sentence before a code block gives a step', () => {
  it("takes a modal, a request or the reader addressed as the reader's step", () => {
    expect(announcesStep('Zennit can be installed directly from PyPI:')).toBe(true);
    expect(announcesStep('Dann erstellen Sie die Datei wie folgt:')).toBe(true);
    expect(announcesStep('For TensorFlow, please run:')).toBe(true);
    // "So" opens it, but the reader is addressed
    expect(announcesStep('So erstellen Sie den Plan für vier Beete:')).toBe(true);
    // a sentence with no demonstrative opening keeps the step reading (English imperatives the pattern misses)
    expect(announcesStep('Prepare the data required for the example:')).toBe(true);
  });

  it('takes a statement about a result, a file shown or output for none', () => {
    expect(announcesStep('Dies ist die Datei control, die dh_make für uns erstellt hat:')).toBe(false);
    expect(announcesStep('Here are its contents:')).toBe(false);
    // "sie" in lower case is "they", not the reader
    expect(
      announcesStep('Neuere Versionen erzeugen eine Vorlage, die so aussieht, indem sie dh verwenden:'),
    ).toBe(false);
    expect(announcesStep('The output metadata will be something like:')).toBe(false);
  });
});

describe('word-by-word gloss', () => {
  it('follows each content word with its dictionary stem in brackets; stop words and unknown words stay', () => {
    const tr = QueryTranslator.fromStemPairs(TINY_DICTIONARY);
    expect(glossSentence('Wir speichern unsere Einbettungen in Vektor-Datenbanken.', 'de', tr)).toBe(
      'Wir speichern [store] unsere Einbettungen [embed] in Vektor-Datenbanken [vector databas].',
    );
    expect(glossSentence('Die Regel gilt 2 mal.', 'de', tr)).toBe('Die Regel [rule] gilt 2 mal.');
  });

  it('glossOnly says the sentence with the stems alone, for a monolingual embedding', () => {
    const tr = QueryTranslator.fromStemPairs(TINY_DICTIONARY);
    expect(glossOnly('Wir speichern unsere Einbettungen in Vektor-Datenbanken.', 'de', tr)).toBe(
      'store embed vector databas.',
    );
  });

  it('lets the embedding compare an English question with German sentences through their glosses', async () => {
    const tr = QueryTranslator.fromStemPairs(TINY_DICTIONARY);
    const embedding = new HashEmbedding({ dimensions: 64 });
    const question = 'Where do we store the embed vectors?';
    const [qv] = await embedding.embed([question]);
    const text = 'Die Regel gilt hier. Wir speichern unsere Einbettungen in Vektor-Datenbanken.';
    const source = {
      n: 1,
      chunkId: 'c',
      file: 'v.md',
      title: 'v',
      language: 'de' as const,
      citation: '[v.md]',
      score: 1,
      denseScore: 1,
      lexicalScore: 1,
      text,
    };
    const query = analyzeQuery(question, { translator: tr });
    const without = await scoreSourceSentences(question, qv!, query, [source], embedding);
    const withGloss = await scoreSourceSentences(
      question,
      qv!,
      query,
      [source],
      embedding,
      undefined,
      undefined,
      tr,
    );
    // the gloss ("store embed vector databas.") shares the question's words; the German text does not
    const [glossed] = await embedding.embed(['store embed vector databas.']);
    expect(withGloss[1]!.dense).toBeCloseTo(dot(qv!, glossed!), 6);
    expect(withGloss[1]!.dense).toBeGreaterThan(without[1]!.dense);
    // only with the gloss does the answering sentence get the embedding's lift on top of the shared words
    expect(withGloss[1]!.score).toBeGreaterThan(without[1]!.score);
    expect(withGloss[1]!.score).toBeGreaterThan(withGloss[0]!.score);
  });
});

describe('reading what a question asks for: opening words, relative clauses, who acts, how X works', () => {
  const kind = (q: string) => questionIntent(q).kind;

  it('a question opening with why asks for a reason even when it names an alternative', () => {
    expect(kind('Why does the tutorial keep the index on disk instead of in memory?')).toBe('reason');
    expect(kind('Warum nimmt man hier Adam statt SGD?')).toBe('reason');
    // without the opening "why" the alternative still makes it a comparison
    expect(kind('When should I keep the index on disk instead of in memory?')).toBe('comparison');
  });

  it('"which" of a relative clause asks for no list', () => {
    expect(kind('What is the name of a program in which the user writes the rules?')).not.toBe('list');
    expect(kind('Which optimisers does the trainer support?')).toBe('list');
  });

  it('"how does X work" / "wie funktioniert X" asks what X is and does', () => {
    expect(questionIntent('How does the tokenizer work?')).toEqual({
      kind: 'definition',
      subject: ['tokenizer'],
    });
    expect(questionIntent('Wie funktioniert Occlusion in Captum?')).toEqual({
      kind: 'definition',
      subject: ['occlusion'],
    });
    const occlusion = questionIntent('Wie funktioniert Occlusion?');
    expect(holdsRelation('Occlusion is a perturbation based approach.', occlusion)).toBe(true);
    expect(holdsRelation('Occlusion, a perturbation based approach, ...', occlusion)).toBe(true);
    // a list's last item followed by a comma is no apposition
    expect(
      holdsRelation('For methods including Feature Ablation and Occlusion, each input is run.', occlusion),
    ).toBe(false);
  });

  it('"what does the lesson mean by X" defines X, not the lesson', () => {
    const q = questionIntent('What does the course mean by the risk called data drift?');
    expect(q).toEqual({ kind: 'definition', subject: ['data', 'drift'] });
    expect(holdsRelation('Data drift: the inputs change after training.', q)).toBe(true);
    expect(holdsRelation('The course covers several risks.', q)).toBe(false);
  });

  it('"was berechnet X?" and "was versteht die Lektion unter X?" define X, as "what does X compute?" does', () => {
    expect(questionIntent('Was berechnet Saliency in Captum?')).toEqual({
      kind: 'definition',
      subject: ['saliency'],
    });
    expect(questionIntent('Was gibt der Retriever zurück?')).toEqual({
      kind: 'definition',
      subject: ['retriever'],
    });
    expect(questionIntent('Was versteht der Kurs unter Datendrift?')).toEqual({
      kind: 'definition',
      subject: ['datendrift'],
    });
    expect(questionIntent('What does the relevancy evaluator check?')).toEqual({
      kind: 'definition',
      subject: ['relevancy', 'evaluator'],
    });
    // the definition's subject opens the sentence that says what it computes
    const saliency = questionIntent('Was berechnet Saliency?');
    expect(holdsRelation('Saliency ist der Gradient der Ausgabe nach der Eingabe.', saliency)).toBe(true);
    expect(holdsRelation('Captum bietet viele Verfahren.', saliency)).toBe(false);
    // no X acts in "was gibt es", "was muss ich": no definition
    expect(kind('Was gibt es für Retriever?')).not.toBe('definition');
    expect(kind('Was muss ich vor dem Bauen tun?')).toBe('procedure');
  });

  it('a purpose or a cause answers a why question as a "because" does', () => {
    const why = questionIntent('Why do I need the target argument?');
    expect(holdsRelation('The purpose of target is to select one output per example.', why)).toBe(true);
    expect(holdsRelation('Another factor is that the models are black boxes.', why)).toBe(true);
    expect(holdsRelation('Include a random explanation to verify the metric.', why)).toBe(true);
    expect(holdsRelation('The target argument is an integer.', why)).toBe(false);
  });

  it('a definition subject in the other language: "das Ziel" is defined by "The goal of ... is"', () => {
    const translator = QueryTranslator.fromStemPairs(`${TINY_DICTIONARY}\nziel\tgoal\t1`);
    const question = 'Was ist das Ziel der Regel?';
    const intent = questionIntent(question);
    expect(intent.subject).toEqual(['ziel', 'regel']);
    const query = analyzeQuery(question, { translator });
    const english = translatedIntent(intent, query, 'en');
    expect(english.subject).toEqual(expect.arrayContaining(['goal', 'rule']));
    expect(holdsRelation('The goal of this rule is to keep relevance.', english)).toBe(true);
    expect(holdsRelation('The goal of this rule is to keep relevance.', intent)).toBe(false);
    // the question's own language keeps its words; other intents are left as they are
    expect(translatedIntent(questionIntent('Warum gilt die Regel?'), query, 'en').kind).toBe('reason');
  });

  it('names the words with which a question names its document, not what it asks', () => {
    expect([
      ...documentNamingWords('What does a vector database store, according to the RAG lesson?'),
    ]).toEqual(expect.arrayContaining(['rag', 'lesson']));
    const named = documentNamingWords('Which kinds of harm does the model debugging lesson list?');
    expect([...named].sort()).toEqual(['debugging', 'lesson', 'model']);
    expect([
      ...documentNamingWords('Auf welchen Grundsätzen beruht IG laut der Captum-Dokumentation?'),
    ]).toEqual(expect.arrayContaining(['captum', 'dokumentation']));
    expect(documentNamingWords('What does the epsilon rule do?').size).toBe(0);
  });

  it('marks the concepts that are document-kind nouns, in either language', () => {
    const kinds = (question: string) => {
      const concepts = analyzeQuery(question).concepts;
      const kind = documentKindConcepts(question, concepts);
      return concepts.filter((_, k) => kind[k]).map((c) => c.word);
    };
    expect(kinds('Which store does the RAG lesson recommend?')).toEqual(['lesson']);
    expect(kinds('Was nennt die Dokumentation von Captum?')).toEqual(['Dokumentation']);
    expect(kinds('What does the epsilon rule do?')).toEqual([]);
    // plurals and the German genitive are the same nouns
    expect(kinds('What do the tutorials say about LRP?')).toEqual(['tutorials']);
    expect(kinds('Was steht in den Lektionen über Chunking?')).toEqual(['Lektionen']);
    expect(kinds('Was sagt die Anleitung des Kurses über Chunking?')).toEqual(['Anleitung', 'Kurses']);
    expect(kinds('Welche Schritte nennen die Anleitungen?')).toEqual(['Anleitungen']);
    // the same words where they name no document: an adverb, an experience, a verb, an adjective
    expect(kinds('Is the relevance of course conserved?')).toEqual([]);
    expect(kinds('What is a lesson learned from pruning?')).toEqual([]);
    expect(kinds('How do relevance scores guide pruning?')).toEqual([]);
    expect(kinds('How much manual annotation does the study need?')).toEqual([]);
    expect(kinds('What does the RAG guide say about chunking?')).toEqual(['guide']);
    expect(kinds('Which steps does our evaluation manual list?')).toEqual(['manual']);
    expect(kinds('Was gilt, wenn der Leitfaden dem Policy Manual widerspricht?')).toEqual([
      'Leitfaden',
      'Manual',
    ]);
  });

  it('names no document with a word that is not a document noun where it stands', () => {
    expect(documentNamingWords('How do relevance scores guide pruning?').size).toBe(0);
    expect(documentNamingWords('How much manual annotation does the study need?').size).toBe(0);
    expect(documentNamingWords('Is the relevance of course conserved?').size).toBe(0);
    expect(documentNamingWords('Which lessons learned does the study report?').size).toBe(0);
    expect([...documentNamingWords('What does the RAG guide say about chunking?')].sort()).toEqual([
      'guide',
      'rag',
    ]);
    expect([...documentNamingWords('Was steht in den RAG-Lektionen über Chunking?')].sort()).toEqual([
      'lektionen',
      'rag',
    ]);
  });

  it('marks the question concepts every word of which names the document (a hyphenated one too)', () => {
    const question = 'Which index does the retriever use, according to the RAG lesson?';
    const concepts = analyzeQuery(question).concepts;
    const naming = namingConcepts(question, concepts);
    expect(concepts.filter((_, k) => naming[k]).map((c) => c.word.toLowerCase())).toEqual(['rag', 'lesson']);
    const german = 'Auf welchen Grundsätzen beruht IG laut der Captum-Dokumentation?';
    const parts = analyzeQuery(german).concepts;
    const named = parts.filter((_, k) => namingConcepts(german, parts)[k]).map((c) => c.word);
    expect(named).toContain('Captum-Dokumentation');
    expect(named).not.toContain('Grundsätzen');
    expect(
      namingConcepts(
        'What does the epsilon rule do?',
        analyzeQuery('What does the epsilon rule do?').concepts,
      ),
    ).toEqual([false, false]);
  });
});

describe('the sentence scorer reads German sentences as the index does', () => {
  it('a compound holds its parts: "Paketnamen" answers a question about a package name', async () => {
    const translator = QueryTranslator.fromStemPairs('paket\tpackag\t1\nnam\tname\t1\nzeich\tcharact\t1');
    const embedding = new HashEmbedding({ dimensions: 64 });
    const question = 'Which characters may a package name hold?';
    const [qv] = await embedding.embed([question]);
    const source = {
      n: 1,
      chunkId: 'c',
      file: 'de-pakete.md',
      title: 'Notizen',
      language: 'de' as const,
      citation: '[de-pakete.md]',
      score: 1,
      denseScore: 1,
      lexicalScore: 1,
      text: 'Paketnamen bestehen aus Kleinbuchstaben. Heute scheint die Sonne.',
    };
    const query = analyzeQuery(question, { translator });
    const [compound, other] = await scoreSourceSentences(
      question,
      qv!,
      query,
      [source],
      embedding,
      undefined,
      questionIntent(question),
      translator,
    );
    // "package" and "name" both found in the compound
    const named = query.concepts
      .filter((c) => /package|name/.test(c.word))
      .map((c) => query.concepts.indexOf(c));
    expect(compound!.concepts).toEqual(expect.arrayContaining(named));
    expect(compound!.lexical).toBeGreaterThan(0);
    expect(other!.lexical).toBe(0);
  });
});

describe('a monolingual encoder does not choose among German sentences for a German question', () => {
  // the question and one sentence that shares none of its words get the same vector; every other text its own axis
  const twin = 'Die Sonne scheint heute über dem Garten.';
  const fake = (multilingual: boolean) => ({
    id: 'fake',
    multilingual,
    embed: async (texts: readonly string[]) =>
      texts.map((t, i) => {
        const v = new Float32Array(16);
        v[t === twin || t.endsWith('?') ? 0 : 1 + (i % 15)] = 1;
        return v;
      }),
  });
  const source = (language: 'en' | 'de', text: string) => ({
    n: 1,
    chunkId: 'c',
    file: `${language}.md`,
    title: 'Notizen',
    language,
    citation: `[${language}.md]`,
    score: 1,
    denseScore: 1,
    lexicalScore: 1,
    text,
  });
  const score = async (question: string, text: string, multilingual: boolean) => {
    const embedding = fake(multilingual);
    const [qv] = await embedding.embed([question]);
    const query = analyzeQuery(question);
    const language = query.language;
    return scoreSourceSentences(question, qv!, query, [source(language, text)], embedding);
  };

  it("German question, German sentences: the sentence with the question's words wins, the embedding's twin scores 0", async () => {
    const question = 'Womit werden Debian-Pakete gebaut?';
    const text = `Debian-Pakete werden mit pdebuild gebaut. ${twin} Der Rest folgt später.`;
    const [words, sun] = await score(question, text, false);
    expect(sun!.text).toBe(twin);
    expect(sun!.dense).toBeCloseTo(1, 6); // still embedded (grounding and heatmaps use it)
    expect(sun!.score).toBe(0);
    expect(words!.score).toBeGreaterThan(0);
    // a multilingual encoder reads German: its similarity lifts the twin
    const [, lifted] = await score(question, text, true);
    expect(lifted!.score).toBeGreaterThan(0);
  });

  it("an English question over English sentences keeps the embedding's lift", async () => {
    const englishTwin = 'The sun shines over the garden today.';
    const question = 'How are Debian packages built?';
    const embedding = {
      id: 'fake',
      embed: async (texts: readonly string[]) =>
        texts.map((t, i) => {
          const v = new Float32Array(16);
          v[t === englishTwin || t.endsWith('?') ? 0 : 1 + (i % 15)] = 1;
          return v;
        }),
    };
    const [qv] = await embedding.embed([question]);
    const scored = await scoreSourceSentences(
      question,
      qv!,
      analyzeQuery(question),
      [source('en', `Debian packages are built with pdebuild. ${englishTwin} More follows later.`)],
      embedding,
    );
    expect(scored[1]!.text).toBe(englishTwin);
    expect(scored[1]!.score).toBeGreaterThan(0);
  });
});

describe('the kinds the question authors label, read from the question', () => {
  const kind = (q: string) => questionIntent(q).kind;

  it('a conditional clause opening a sentence answers a why asked under a condition, not a what-for', () => {
    const underCondition = questionIntent('Why does the parser fail when the file is empty?');
    expect(underCondition).toMatchObject({ kind: 'reason', conditional: true });
    expect(
      holdsRelation('If the file has no header, the parser stops at the first line.', underCondition),
    ).toBe(true);
    expect(holdsRelation('Wenn die Datei leer ist, bricht der Parser ab.', underCondition)).toBe(true);
    // a trailing condition only narrows what the sentence says; an opening "if" without a main clause states none
    expect(holdsRelation('The parser reads the header when the file opens.', underCondition)).toBe(false);
    expect(holdsRelation('If unsure see the manual.', underCondition)).toBe(false);
    // a why without a condition, a what-for and a yes/no question are not answered by a condition
    const plain = questionIntent('Why does the parser read the header?');
    expect(plain.conditional).toBeUndefined();
    expect(holdsRelation('If the file has no header, the parser stops at the first line.', plain)).toBe(
      false,
    );
    const whatFor = questionIntent('Wofür braucht man den Parser, wenn die Datei leer ist?');
    expect(whatFor).toMatchObject({ kind: 'reason' });
    expect(whatFor.conditional).toBeUndefined();
    expect(holdsRelation('Wenn die Datei leer ist, bricht der Parser ab.', whatFor)).toBe(false);
    expect(questionIntent('Can the parser read a file when it is empty?').conditional).toBeUndefined();
  });

  it('reads what a thing is for ("Wozu dient X?") as its definition, "Wofür braucht man X?" as a reason', () => {
    expect(questionIntent('Wozu dient die Heatmap im Dashboard?')).toMatchObject({
      kind: 'definition',
      subject: ['heatmap'],
    });
    expect(questionIntent('Wofür ist das Modul zuständig?')).toMatchObject({
      kind: 'definition',
      subject: ['modul'],
    });
    expect(kind('Wofür braucht man das Modul?')).toBe('reason');
  });

  it('reads "which" of one thing as a definition and of several as a list', () => {
    expect(kind('Which rule do I get from the default hook?')).toBe('definition');
    expect(kind('Welcher Retriever holt die ähnlichsten Knoten?')).toBe('definition');
    expect(kind('Which rules does the composite use?')).toBe('list');
    // the head of "kinds of harm" is "kinds"
    expect(kind('Which kinds of harm does the lesson name?')).toBe('list');
    expect(kind('Welche Arten der Suche gibt es?')).toBe('list');
    expect(kind('What fields does the struct hold?')).toBe('list');
    expect(kind('What class does the struct hold?')).not.toBe('list');
  });

  it('reads quantities by name, also ending a German compound, and dates as numbers', () => {
    expect(kind('What score range does the evaluator return?')).toBe('number');
    expect(kind('Welche Python-Version braucht man?')).toBe('number');
    expect(kind('Welchen Wertebereich hat der Score?')).toBe('number');
    expect(kind('Until when does the model know about the world?')).toBe('number');
  });

  it('reads a relation between two named things as a comparison, an obligation of the asker as a procedure', () => {
    expect(kind('How is Internal Influence related to Integrated Gradients?')).toBe('comparison');
    expect(kind('What do I have to change in the server?')).toBe('procedure');
    expect(kind('What must my site set up for threads?')).toBe('procedure');
    expect(kind('Was kann man tun, wenn nichts gefunden wird?')).toBe('procedure');
    expect(kind('Wie kann das Dashboard Kohorten bilden?')).toBe('procedure');
  });

  it('reads a question by its opening word when no relation word tells, and marks the kind as guessed', () => {
    // a yes/no question: the reason for the yes or no answers it
    expect(questionIntent('Can I compute attributions from several threads?')).toEqual({
      kind: 'reason',
      subject: [],
      polar: true,
      guessed: true,
    });
    expect(questionIntent('Kann man die Regeln ändern?').kind).toBe('reason');
    expect(questionIntent('How does the library handle unknown layers?')).toEqual({
      kind: 'procedure',
      subject: [],
      guessed: true,
    });
    // a relation word decides: not guessed
    expect(questionIntent('Why does Zennit need canonizers?').guessed).toBeUndefined();
    expect(kind('Tell me about LRP.')).toBe('other');
  });

  it('finds the relation each kind asks for: an instruction, an enumeration, a yes or no', () => {
    const how = questionIntent('How can I make the attribution faster?');
    expect(holdsRelation('To enable this, simply set the batch argument.', how)).toBe(true);
    expect(holdsRelation('You can pass a larger batch.', how)).toBe(true);
    expect(holdsRelation('Verwenden Sie eine größere Stapelgröße.', how)).toBe(true);
    // "use" inside a statement is no instruction
    expect(holdsRelation('Most methods use the gradient of the output.', how)).toBe(false);
    const which = questionIntent('Which formats can the converter read?');
    expect(holdsRelation('It reads SavedModel, Keras and TF Hub modules.', which)).toBe(true);
    expect(holdsRelation('Supported formats: SavedModel and Keras.', which)).toBe(true);
    // a lone comma of a clause is no enumeration
    expect(holdsRelation('If the model is large, the converter is slow.', which)).toBe(false);
    // a German article is no quantity
    const many = questionIntent('Wie viele Indizes legt das Werkzeug an?');
    expect(holdsRelation('Das Werkzeug legt ein Verzeichnis an.', many)).toBe(false);
    expect(holdsRelation('Das Werkzeug legt zwei Indizes an.', many)).toBe(true);
    const yesNo = questionIntent('Can I run it from several threads?');
    expect(holdsRelation('The hooks are not thread-safe.', yesNo)).toBe(true);
    expect(holdsRelation('The hooks store the gradient.', yesNo)).toBe(false);
  });
});

describe('a specific relation weighs against the source rank', () => {
  const src = (n: number, text: string) => ({
    n,
    chunkId: `c${n}`,
    file: `s${n}.md`,
    title: 'notes',
    language: 'en' as const,
    citation: `[s${n}.md]`,
    score: 1,
    denseScore: 1,
    lexicalScore: 1,
    text,
  });
  const scores = async (question: string, sentence: string) => {
    const embedding = new HashEmbedding({ dimensions: 64 });
    const [qv] = await embedding.embed([question]);
    const sources = [
      src(1, sentence),
      src(2, 'Weather is fine today.'),
      src(3, 'Trains run late.'),
      src(4, sentence),
    ];
    const scored = await scoreSourceSentences(question, qv!, analyzeQuery(question), sources, embedding);
    const of = (n: number) => scored.find((s) => s.source === n)!;
    return { ratio: of(4).score / of(1).score, relation: of(1).relation };
  };

  it('a reason or a definition in source 4 keeps the square root of the rank prior (1 / 1.75), other sentences all of it', async () => {
    const reason = await scores(
      'Why is the cache cleared?',
      'The cache is cleared because the index changed.',
    );
    expect(reason.relation).toBe(true);
    expect(reason.ratio).toBeCloseTo(Math.sqrt(1 / 1.75), 10);
    const definition = await scores(
      'What is a cache in the index store?',
      'A cache is a store of recent results.',
    );
    expect(definition.relation).toBe(true);
    expect(definition.ratio).toBeCloseTo(Math.sqrt(1 / 1.75), 10);
    // a question that asks what a name is and no more: its definition needs no rank at all (`asksForName`)
    const name = await scores('What is a cache?', 'A cache is a store of recent results.');
    expect(name.relation).toBe(true);
    expect(name.ratio).toBe(1);
    // no relation: the whole prior
    const plain = await scores('Why is the cache cleared?', 'The cache is cleared every day.');
    expect(plain.relation).toBe(false);
    expect(plain.ratio).toBeCloseTo(1 / 1.75, 10);
    // a reason of a kind guessed from the opening word ("Can ...?") does not weigh against the rank either
    const guessed = await scores(
      'Can the cache be cleared?',
      'The cache is cleared because the index changed.',
    );
    expect(guessed.relation).toBe(true);
    expect(guessed.ratio).toBeCloseTo(1 / 1.75, 10);
    // a list's relation (an enumeration) is too loose to weigh against the rank
    const list = await scores('Which caches are cleared?', 'Caches, indexes and logs are cleared.');
    expect(list.relation).toBe(true);
    expect(list.ratio).toBeCloseTo(1 / 1.75, 10);
  });
});

describe('a choice between named things ("when should I use X instead of Y?")', () => {
  it('is read from when/why/should with instead of, rather than, over, statt', () => {
    for (const q of [
      'When should I use alpha-beta instead of epsilon?',
      'Why use alpha-beta rather than epsilon?',
      'Should I prefer EpsilonPlus over EpsilonAlpha2Beta1?',
      'Wann sollte man alpha-beta statt epsilon verwenden?',
    ])
      expect(questionIntent(q).choice, q).toBe(true);
    for (const q of [
      'How does alpha-beta differ from epsilon?',
      'Why does Zennit need canonizers?',
      'Which algorithm works on a batch instead of a single example?',
    ])
      expect(questionIntent(q).choice, q).toBeUndefined();
  });

  it('"over" as a place and "statt" as the particle of "stattfinden" ask for no choice', () => {
    for (const q of [
      'Why do we sum over the channels?',
      'Why should the heatmap be computed over all classes?',
      'Warum findet die Berechnung statt?',
      'Wann sollte die Auswertung stattfinden?',
    ])
      expect(questionIntent(q).choice, q).toBeUndefined();
    // nor is a question whose "statt" is the separated particle a comparison
    expect(questionIntent('Wann findet die Auswertung statt?').kind).not.toBe('comparison');
    expect(questionIntent('Warum wird die Relevanz statt des Gradienten verwendet?').choice).toBe(true);
  });

  it('a condition, a preference or a reason holds it; a list naming both things does not', () => {
    const choice = questionIntent('When should I use alpha-beta instead of epsilon?');
    expect(holdsRelation('Alpha-beta is the better choice for convolutional layers.', choice)).toBe(true);
    expect(holdsRelation('Use alpha-beta if negative evidence matters.', choice)).toBe(true);
    expect(holdsRelation('Alpha-beta keeps evidence apart because it splits the terms.', choice)).toBe(true);
    expect(
      holdsRelation('The composites are EpsilonPlus, EpsilonAlpha2Beta1 and EpsilonGammaBox.', choice),
    ).toBe(false);
    // the looser words of a comparison ("different") decide nothing
    expect(holdsRelation('Epsilon uses a different argument name than the stabilizer.', choice)).toBe(false);
  });

  it('the sentence that says when beats a higher-ranked list that names both things', async () => {
    const embedding = new HashEmbedding({ dimensions: 256 });
    const texts = [
      // source 1: the list of composites that the question got as its answer
      'The built-in composites are EpsilonPlus, which uses ZPlus for convolutional layers and Epsilon for dense layers, EpsilonAlpha2Beta1, which uses AlphaBeta (alpha=2, beta=1) for convolutional layers and Epsilon for dense layers, and EpsilonGammaBox, which uses Gamma, Epsilon and ZBox.',
      'A stabilizer argument may be given for every rule. It is the same as the epsilon argument of the epsilon rule, which uses a different name.',
      'Heatmaps are drawn with a colour map. The alpha-beta rule is the better choice when positive and negative contributions should be weighted separately, as in the convolutional layers of image classifiers. Epsilon is enough for dense layers.',
    ];
    const sources: Source[] = texts.map((text, i) => ({
      n: i + 1,
      chunkId: `c${i + 1}`,
      file: `f${i + 1}.md`,
      title: 'rules',
      language: 'en',
      citation: `[f${i + 1}.md]`,
      score: 1 - i * 0.2,
      denseScore: 0,
      lexicalScore: 0,
      text,
    }));
    for (const question of [
      'When should I use alpha-beta instead of epsilon?',
      'Why use alpha-beta rather than epsilon?',
    ]) {
      const [qv] = await embedding.embed([question]);
      const intent = questionIntent(question);
      const scored = await scoreSourceSentences(
        question,
        qv!,
        analyzeQuery(question),
        sources,
        embedding,
        undefined,
        intent,
      );
      const answer = composeExtractiveAnswer(scored, sources, { intent });
      expect(answer.sentences[0]!.text, question).toMatch(/^The alpha-beta rule is the better choice when/);
      expect(answer.sentences[0]!.citations).toEqual([3]);
      // the unrelated stabilizer passage stays out
      expect(answer.text).not.toContain('stabilizer');
    }
  });
});

describe('a definition question prefers the sentence that defines its subject', () => {
  const lrp = questionIntent('What is LRP?');
  const zennit = questionIntent('What is Zennit?');
  it('by a copula with an article, an apposition or a naming verb after the subject that opens the sentence', () => {
    expect(
      definesSubject('A Node is the atomic unit of data in LlamaIndex.', questionIntent('What is a Node?')),
    ).toBe(true);
    expect(definesSubject('Zennit (Zennit explains neural networks in torch) is a framework.', zennit)).toBe(
      true,
    );
    expect(definesSubject('ZBox, an LRP rule for bounded inputs.', questionIntent('What is ZBox?'))).toBe(
      true,
    );
    expect(definesSubject('LRP stands for layer-wise relevance propagation.', lrp)).toBe(true);
    expect(
      definesSubject(
        'Eine Vektor-Datenbank ist, im Gegensatz zu traditionellen Datenbanken, eine spezialisierte Datenbank.',
        questionIntent('Was ist eine Vektor-Datenbank?'),
      ),
    ).toBe(true);
    // the subject used, not defined: after a preposition, as a modifier, in a passive or a state
    expect(
      definesSubject('For LRP, the gradient of MaxPool assigns values to the largest inputs.', lrp),
    ).toBe(false);
    expect(definesSubject('The most common composites for LRP are implemented in zennit.', lrp)).toBe(false);
    expect(definesSubject('The LRP analyzer struct holds three fields.', lrp)).toBe(false);
    expect(definesSubject('Zennit is currently under active development.', zennit)).toBe(false);
    expect(definesSubject('Now that Zennit is installed, try an example.', zennit)).toBe(false);
  });

  it('by an acronym with its expansion as the subject or after a copula or naming verb', () => {
    expect(
      definesSubject('Layer-wise Relevance Propagation (LRP) is not implementation invariant.', lrp),
    ).toBe(true);
    expect(
      definesSubject('LRP (Layer-wise Relevance Propagation) attributes relevance to inputs.', lrp),
    ).toBe(true);
    const rag = questionIntent('Was ist RAG?');
    expect(definesSubject('This process is also known as Retrieval Augmented Generation (RAG).', rag)).toBe(
      true,
    );
    expect(
      definesSubject(
        'A common use is Retrieval-Augmented Generation or RAG, in which data is retrieved.',
        rag,
      ),
    ).toBe(true);
    expect(
      definesSubject(
        'TCAV or Testing with Concept Activation Vectors consists in using a concept vector.',
        questionIntent('What is TCAV?'),
      ),
    ).toBe(true);
    // the expansion in passing, initials that do not spell the acronym, an acronym not written in capitals
    expect(definesSubject('To learn more about Retrieval Augmented Generation (RAG), read on.', rag)).toBe(
      false,
    );
    expect(definesSubject('Lots of Papers (LRP) is a list.', lrp)).toBe(false);
    expect(definesSubject('Layer Relevance Propagation (lrp) is a method.', lrp)).toBe(false);
    // and never for other kinds or a definition without a subject
    expect(definesSubject('LRP is a method.', questionIntent('Why is LRP a method?'))).toBe(false);
  });

  it('by a glossary entry (the name as a label, then what it does) or an introduction with an apposition', () => {
    expect(
      definesSubject('lrp.*: LRP attributes relevance to each input in proportion to its contribution.', lrp),
    ).toBe(true);
    const irof = questionIntent('What is IROF?');
    expect(definesSubject('IROF (Rieger et al., 2020): computes the area over the curve.', irof)).toBe(true);
    expect(
      definesSubject(
        'MPRT (Model Parameter Randomisation Test) (Adebayo et al., 2018): randomises the layers.',
        questionIntent('Was ist MPRT?'),
      ),
    ).toBe(true);
    expect(
      definesSubject(
        '🦊 Xplique (pronounced eks-plik) is a Python toolkit.',
        questionIntent('What is Xplique?'),
      ),
    ).toBe(true);
    const quantus = questionIntent('What is Quantus?');
    expect(
      definesSubject('Therefore, we developed Quantus, an easy-to-use toolbox for evaluation.', quantus),
    ).toBe(true);
    // a label without a verb after it, a list of labels, a use after an introducing verb without an apposition
    expect(definesSubject('LRP: rule 2 of 5', lrp)).toBe(false);
    expect(definesSubject('lrp.*: see the docs', lrp)).toBe(false);
    expect(definesSubject('We developed Quantus further in 2023.', quantus)).toBe(false);
    expect(definesSubject('We present results for Quantus, a toolbox.', quantus)).toBe(false);
  });

  it('asksForName: a definition question that is little more than a name of at most three words', () => {
    expect(asksForName(lrp, 1)).toBe(true);
    expect(asksForName(questionIntent('Was ist LRP?'), 1)).toBe(true);
    // a hyphenated name read by the search as its parts
    expect(asksForName(questionIntent('What is Grad-CAM?'), 2)).toBe(true);
    // more search concepts than the name has words: the question asks more than the name
    expect(asksForName(lrp, 2)).toBe(false);
    expect(asksForName(questionIntent('Why is LRP conservative?'), 1)).toBe(false);
    expect(asksForName(questionIntent('When should I use LRP instead of Integrated Gradients?'), 3)).toBe(
      false,
    );
  });

  it('a sentence that defines the subject is quoted before one that merely opens with it', async () => {
    const question = 'What is LRP?';
    // one vector for every text: no sentence stands out on the embedding, the words and the relation decide
    const embedding = {
      id: 'same',
      embed: async (texts: readonly string[]) => texts.map(() => Float32Array.from([1, 0, 0])),
    };
    const qv = Float32Array.from([1, 0, 0]);
    const text =
      'The LRP analyzer struct holds three fields. Layer-wise Relevance Propagation (LRP) is an attribution method.';
    const source: Source = {
      n: 1,
      chunkId: 'c',
      file: 'notes.md',
      title: 'notes',
      language: 'en',
      citation: '[notes.md]',
      score: 1,
      denseScore: 1,
      lexicalScore: 1,
      text,
    };
    const scored = await scoreSourceSentences(question, qv!, analyzeQuery(question), [source], embedding);
    const [uses, defines] = scored;
    expect(uses!.relation).toBe(true); // the looser relation: the subject opens the sentence
    expect(uses!.defines).toBeUndefined();
    expect(defines!.defines).toBe(true);
    // both hold the question's one concept; the definition weighs 1.3 times the looser relation
    const ofNovelty = (s: typeof uses) => 0.3 + 0.7 * s!.novelty;
    expect(defines!.score / ofNovelty(defines) / (uses!.score / ofNovelty(uses))).toBeCloseTo(1.3, 10);
    expect(defines!.score).toBeGreaterThan(uses!.score);
  });
});

describe('a footnote in a source', () => {
  it('scores as prose would: a guide may put the instruction itself in a note', async () => {
    const question = 'Which folder does the tool empty?';
    const embedding = new HashEmbedding({ dimensions: 64 });
    const [qv] = await embedding.embed([question]);
    const prose = 'The tool writes the archive to the output folder.';
    const note = 'The tool empties the output folder first.';
    const text = `${prose}\n\n${note}`;
    const source = (kind: 'note' | 'paragraph'): Source => ({
      n: 1,
      chunkId: 'c',
      file: 'a.pdf',
      title: 'a',
      language: 'en',
      page: 2,
      citation: '[a.pdf, p. 2]',
      score: 1,
      denseScore: 1,
      lexicalScore: 1,
      text,
      blocks: [
        { kind: 'paragraph', start: 0, end: prose.length },
        { kind, start: prose.length + 2, end: text.length },
      ],
    });
    const scored = (kind: 'note' | 'paragraph') =>
      scoreSourceSentences(question, qv!, analyzeQuery(question), [source(kind)], embedding);
    const [asNote, asProse] = [await scored('note'), await scored('paragraph')];
    expect(asNote.map((s) => s.kind)).toEqual(['paragraph', 'note']);
    expect(asNote[1]!.score).toBeGreaterThan(asNote[0]!.score);
    expect(asNote.map((s) => s.score)).toEqual(asProse.map((s) => s.score));
  });
});

describe('the question concepts weigh by a gentle rarity', () => {
  it('two concepts half the candidates hold outweigh the one concept only one candidate holds', async () => {
    // eight candidate sentences: "heatmap" in one, "dashboard" and "error" in four each (both in the second one)
    const sentences = [
      'The heatmap uses warm colours.',
      'The dashboard lists every error by cohort.',
      'The dashboard opens in a browser.',
      'The dashboard runs locally.',
      'The dashboard has tabs.',
      'An error shows in red.',
      'An error can be exported.',
      'An error needs a cohort.',
    ];
    const question = 'What does the heatmap of the dashboard show about an error?';
    const embedding = new HashEmbedding({ dimensions: 64 });
    const [qv] = await embedding.embed([question]);
    const source: Source = {
      n: 1,
      chunkId: 'c',
      file: 'notes.md',
      title: 'notes',
      language: 'en',
      citation: '[notes.md]',
      score: 1,
      denseScore: 1,
      lexicalScore: 1,
      text: sentences.join(' '),
    };
    const scored = await scoreSourceSentences(question, qv!, analyzeQuery(question), [source], embedding);
    const [rarest, together] = scored;
    expect(rarest!.text).toContain('heatmap');
    expect(together!.text).toContain('every error');
    // with the inverse document frequency itself as the weight (ln 6 against 2 x ln 2) the rarest held 0.56
    expect(together!.lexical).toBeGreaterThan(rarest!.lexical);
  });
});

describe('a definition is followed only by what adds to it, and a name no source defines is said to be so', () => {
  // one vector for every text: no sentence stands out on the embedding, the words and the relation decide
  const embedding = {
    id: 'same',
    embed: async (texts: readonly string[]) => texts.map(() => Float32Array.from([1, 0, 0])),
  };
  const qv = Float32Array.from([1, 0, 0]);
  const sourceOf = (n: number, text: string): Source => ({
    n,
    chunkId: `c${n}`,
    file: `f${n}.md`,
    title: 'notes',
    language: 'en',
    citation: `[f${n}.md]`,
    score: 1 - n * 0.1,
    denseScore: 1,
    lexicalScore: 1,
    text,
  });
  const answer = async (question: string, texts: readonly string[]) => {
    const sources = texts.map((t, i) => sourceOf(i + 1, t));
    const intent = questionIntent(question);
    const query = analyzeQuery(question);
    const scored = await scoreSourceSentences(question, qv, query, sources, embedding, undefined, intent);
    const name = asksForName(intent, query.concepts.length) ? subjectAsWritten(question, intent) : undefined;
    return composeExtractiveAnswer(scored, sources, { intent, ...(name ? { name } : {}) });
  };

  it('aboutSubject: the subject opens the sentence; named in passing it does not', () => {
    const lrp = questionIntent('What is LRP?');
    expect(aboutSubject('LRP attributes relevance to each input.', lrp)).toBe(true);
    expect(aboutSubject('The LRP rules redistribute relevance layer by layer.', lrp)).toBe(true);
    expect(aboutSubject('lrp.*: LRP attributes relevance recursively.', lrp)).toBe(true);
    expect(aboutSubject('For LRP, the gradient of MaxPool assigns values to the largest inputs.', lrp)).toBe(
      false,
    );
    expect(aboutSubject('With CRP, we propose a method.', questionIntent('What is CRP?'))).toBe(false);
    expect(aboutSubject('LRP attributes relevance.', questionIntent('Why is LRP used?'))).toBe(false);
  });

  it('subjectAsWritten: the name as the question spells it', () => {
    expect(subjectAsWritten('What is iNNvestigate?', questionIntent('What is iNNvestigate?'))).toBe(
      'iNNvestigate',
    );
    expect(subjectAsWritten('What is Grad-CAM?', questionIntent('What is Grad-CAM?'))).toBe('Grad-CAM');
    expect(
      subjectAsWritten(
        'Was ist die Integrated Gradients Methode?',
        questionIntent('Was ist die Integrated Gradients Methode?'),
      ),
    ).toBe('Integrated Gradients Methode');
  });

  it('"What is LRP?": the definition, without a sentence of another source that only names LRP', async () => {
    const composed = await answer('What is LRP?', [
      'For LRP, the gradient of MaxPool assigns values only to the largest inputs.',
      'Installation takes a minute. LRP is an attribution method that redistributes the prediction backwards.',
    ]);
    expect(composed.sentences.map((s) => s.text)).toEqual([
      'LRP is an attribution method that redistributes the prediction backwards. [f2.md]',
    ]);
    expect(composed.undefinedName).toBeUndefined();
    // a second passage that defines LRP too adds to the definition
    const more = await answer('What is LRP?', [
      'LRP is an attribution method that redistributes the prediction backwards.',
      'LRP stands for layer-wise relevance propagation.',
    ]);
    expect(more.sentences.map((s) => s.citations[0])).toEqual([1, 2]);
  });

  it('"What is CRP?" with no defining sentence: the best passage that uses it, marked as no definition', async () => {
    const composed = await answer('What is CRP?', [
      'With CRP, we propose a method to disentangle attribution flows by concept.',
      'With CRP, the top sample was predicted from its eyes.',
    ]);
    expect(composed.undefinedName).toBe('CRP');
    expect(composed.sentences).toHaveLength(1);
    expect(composed.sentences[0]!.text).toMatch(/^With CRP, we propose a method/);
  });
});

describe('what a thing is for ("Wozu dienen X?", "What is X used for?")', () => {
  it('reads the subject, marks the purpose and the words that frame it', () => {
    expect(questionIntent('Wozu dienen Embeddings in der RAG-Lektion?')).toEqual({
      kind: 'definition',
      subject: ['embeddings'],
      purpose: true,
      frame: ['dienen'],
    });
    expect(questionIntent('Wofür ist das Einbettungsmodell in LlamaIndex zuständig?')).toMatchObject({
      subject: ['einbettungsmodell'],
      frame: ['zuständig'],
    });
    expect(questionIntent('What is a retriever in LlamaIndex used for?')).toMatchObject({
      kind: 'definition',
      subject: ['retriever'],
      purpose: true,
      frame: ['used'],
    });
    expect(questionIntent('What is the purpose of the canonizer?')).toMatchObject({
      subject: ['canonizer'],
      frame: ['purpose'],
    });
    // the place after "for" is not part of the subject
    expect(questionIntent('What are heatmaps needed for in CRP?')).toMatchObject({
      kind: 'definition',
      subject: ['heatmaps'],
      purpose: true,
      frame: ['needed'],
    });
    // a frame word inside the subject names it: it is not left out of the scoring
    expect(questionIntent('What is a good explainer used for?')).toMatchObject({
      subject: ['good', 'explainer'],
      frame: ['used'],
    });
    // what something is, not what it is for
    expect(questionIntent('What is LRP?').purpose).toBeUndefined();
    expect(questionIntent('Wofür braucht man gnupg?').purpose).toBeUndefined();
  });

  it('a sentence that says the purpose holds the relation; a word of the frame chooses no sentence', async () => {
    const intent = questionIntent('Wozu dienen Einbettungen?');
    expect(holdsRelation('Wir legen sie ab, damit die Suche schnell bleibt.', intent)).toBe(true);
    expect(
      holdsRelation(
        'Wir legen sie ab, damit die Suche schnell bleibt.',
        questionIntent('Was sind Einbettungen?'),
      ),
    ).toBe(false);
    const question = 'Wozu dienen Einbettungen?';
    const embedding = {
      id: 'same',
      embed: async (texts: readonly string[]) => texts.map(() => Float32Array.from([1, 0, 0])),
    };
    const text =
      'Chatbot-Dienste dienen dem Gespräch mit Kunden. Wir speichern Einbettungen in einer Datenbank, damit ähnliche Texte schnell gefunden werden.';
    const source: Source = {
      n: 1,
      chunkId: 'c',
      file: 'notes.md',
      title: 'notes',
      language: 'de',
      citation: '[notes.md]',
      score: 1,
      denseScore: 1,
      lexicalScore: 1,
      text,
    };
    const query = analyzeQuery(question);
    expect(query.concepts.map((c) => c.word)).toContain('dienen');
    const scored = await scoreSourceSentences(
      question,
      Float32Array.from([1, 0, 0]),
      query,
      [source],
      embedding,
      undefined,
      intent,
    );
    const [services, stores] = scored;
    // "dienen" frames the question: the services sentence holding it holds nothing asked for
    expect(services!.lexical).toBe(0);
    expect(stores!.relation).toBe(true);
    expect(composeExtractiveAnswer(scored, [source], { intent }).sentences[0]!.text).toMatch(
      /^Wir speichern/,
    );
  });
});

describe('a loanword of the question meets the sentences of its language in their own words', () => {
  it('"Embeddings" in a German question matches German "Einbettungen" (at half a translation\'s weight)', async () => {
    const translator = QueryTranslator.fromStemPairs(TINY_DICTIONARY);
    const question = 'Wie speichert man Embeddings?';
    const query = analyzeQuery(question, { translator });
    const embeddings = query.concepts.find((c) => c.word === 'Embeddings')!;
    // the search reads it as the English word, not as the German "Einbettungen"
    expect(embeddings.terms.map((t) => t.term)).toContain('en:embed');
    expect(embeddings.terms.map((t) => t.term)).not.toContain('de:einbett');
    const embedding = {
      id: 'same',
      embed: async (texts: readonly string[]) => texts.map(() => Float32Array.from([1, 0, 0])),
    };
    const source: Source = {
      n: 1,
      chunkId: 'c',
      file: 'notes.md',
      title: 'notes',
      language: 'de',
      citation: '[notes.md]',
      score: 1,
      denseScore: 1,
      lexicalScore: 1,
      text: 'Wir speichern unsere Einbettungen in einer Datenbank. Wir speichern die Dateien auf der Platte.',
    };
    const scored = await scoreSourceSentences(
      question,
      Float32Array.from([1, 0, 0]),
      query,
      [source],
      embedding,
      undefined,
      questionIntent(question),
      translator,
    );
    const [einbettungen, dateien] = scored;
    expect(einbettungen!.lexical).toBeGreaterThan(dateien!.lexical);
    // without the dictionary nothing links the two words
    const bare = await scoreSourceSentences(
      question,
      Float32Array.from([1, 0, 0]),
      query,
      [source],
      embedding,
    );
    expect(bare[0]!.lexical).toBe(bare[1]!.lexical);
  });
});

describe('a procedure is answered by an instruction, a reason by a cause; kinds read by their wording', () => {
  const kind = (q: string) => questionIntent(q).kind;

  it('reads German "wo-" questions and "what do I need" / "what happens to X" by what they ask, as guesses', () => {
    // what X depends on, points to or comes from: a cause or a condition
    expect(questionIntent('Wovon hängt die Wahl eines Modells ab?')).toEqual({
      kind: 'reason',
      subject: [],
      guessed: true,
    });
    expect(kind('Worauf kann es hindeuten, wenn ein Merkmal stark wirkt?')).toBe('reason');
    expect(kind('Wodurch entsteht der Fehler?')).toBe('reason');
    // what X is made of or opens with, what happens to it: what X is
    expect(questionIntent('Woraus setzt sich der Befehl zusammen?')).toMatchObject({
      kind: 'definition',
      guessed: true,
    });
    expect(kind('Womit beginnt eine neue Regel?')).toBe('definition');
    expect(kind('What happens to the metadata when the document is split?')).toBe('definition');
    // "what do I need": the things needed, a list
    expect(kind('What do I need before I can evaluate explanations?')).toBe('list');
    expect(kind('Was braucht man für den Bau?')).toBe('list');
    // "wofür" and "wozu" keep their reading (a purpose or a reason)
    expect(kind('Wofür braucht man pbuilder?')).toBe('reason');
  });

  it('numbered steps and "first ... then" hold the procedure; an ordinal in a statement does not', () => {
    const how = questionIntent('How do I convert a model?');
    expect(holdsRelation('2. Upload the weights to your server.', how)).toBe(true);
    expect(holdsRelation('Its first step reads the weights, then it writes the shards.', how)).toBe(false);
    expect(holdsRelation('First the converter reads the weights, then it writes the shards.', how)).toBe(
      true,
    );
    expect(holdsRelation('The first layer is then normalised.', how)).toBe(false);
    expect(holdsRelation('Zuerst richten Sie die Konfiguration ein, dann laden Sie hoch.', how)).toBe(true);
  });

  it('"since" of time and "da" as there hold no reason; causal "since" and "da" do', () => {
    const why = questionIntent('Why does the lesson store embeddings in a vector database?');
    expect(holdsRelation('The database has been maintained since 2019.', why)).toBe(false);
    expect(holdsRelation('It has been the default since version 2.', why)).toBe(false);
    expect(holdsRelation('Since its release in 2020 the library has grown.', why)).toBe(false);
    expect(holdsRelation('Since their introduction, rules have changed.', why)).toBe(false);
    expect(holdsRelation('Since its output is normalised, the scores add up to one.', why)).toBe(true);
    expect(holdsRelation('Embeddings are stored, since the model has a token limit.', why)).toBe(true);
    expect(
      holdsRelation('Wir speichern die Einbettungen, da LLMs eine Begrenzung der Token haben.', why),
    ).toBe(true);
    expect(holdsRelation('Da die Modelle groß sind, speichern wir sie.', why)).toBe(true);
    expect(holdsRelation('Da ist die Datenbank mit den Vektoren.', why)).toBe(false);
    expect(holdsRelation('Die Vektoren liegen hier und da in der Datenbank.', why)).toBe(false);
    const wozu = questionIntent('Wozu dient die Heatmap?');
    expect(holdsRelation('Oben links steht da die Heatmap.', wozu)).toBe(false);
  });

  it('"da" opening a sentence is causal only before its main clause (a comma), not "Da hilft nur ..."', () => {
    const why = questionIntent('Warum startet der Dienst nicht?');
    expect(holdsRelation('Da hilft nur ein Neustart.', why)).toBe(false);
    expect(holdsRelation('Da fehlt eine Datei im Paket.', why)).toBe(false);
    // the comma may follow an abbreviation or a number ("3.0", "bzw. Quellen"): the sentence is one already
    expect(holdsRelation('Da Pakete bzw. Quellen fehlen, bricht der Bau ab.', why)).toBe(true);
    expect(holdsRelation('Da dpkg-source in 3.0 (quilt) Patches liest, braucht es quilt nicht.', why)).toBe(
      true,
    );
    expect(holdsRelation('Da die Datei fehlt, startet der Dienst nicht.', why)).toBe(true);
  });

  it('an instruction verb that opens a noun phrase ("Type checking is ...") is no step; an imperative is', () => {
    const how = questionIntent('How do I speed up the build?');
    for (const statement of [
      'Type checking is done by tsc.',
      'Build times are long on CI.',
      'Check boxes are drawn in grey.',
      'Start values are random.',
      'Follow-up work extended the method.',
    ])
      expect(holdsRelation(statement, how)).toBe(false);
    for (const step of [
      'Build the project with turbo.',
      'Check it is installed.',
      '2. Type the command in a shell.',
      'Then make sure it is cached.',
      'Follow the guide.',
    ])
      expect(holdsRelation(step, how)).toBe(true);
  });

  it('a subject word opens a sentence as itself or its inflection, not as the start of another word', () => {
    const tree = questionIntent('What is a tree?');
    expect(aboutSubject('Treebanks are annotated corpora.', tree)).toBe(false);
    expect(holdsRelation('Treebanks are annotated corpora.', tree)).toBe(false);
    expect(definesSubject('Treebanks are annotated corpora.', tree)).toBe(false);
    expect(aboutSubject('Trees split the data at each node.', tree)).toBe(true);
    const rule = questionIntent('Was ist eine Regel?');
    expect(aboutSubject('Regeln bestimmen, wie Relevanz verteilt wird.', rule)).toBe(true);
    expect(aboutSubject('Regelwerke sind Sammlungen.', rule)).toBe(false);
    // a name joined by a hyphen is the subject by its first part, also as a stem of a translation
    expect(
      aboutSubject('Die Fehleranalyse-Komponente zeigt die Fehler.', {
        kind: 'definition',
        subject: ['fehleranalys'],
      }),
    ).toBe(true);
    // a translated subject is stems: "librari" still opens "Libraries"
    expect(
      aboutSubject('Libraries are collections of code.', { kind: 'definition', subject: ['librari'] }),
    ).toBe(true);
  });
});

describe('the relation counts as clearly as the sentence holds it', () => {
  const intent = questionIntent('Which embedding models does the lesson name?');

  it('reads items after a colon, announced examples and three joined items as clear, a label as loose', () => {
    expect(intent.kind).toBe('list');
    const label =
      'Abruf (Retrieval): Wenn ein Benutzer eine Frage stellt, ruft das Einbettungsmodell relevante Informationen ab.';
    expect(holdsRelation(label, intent)).toBe(true);
    expect(relationClarity(label, intent)).toBe(0);
    expect(relationClarity('Retrieval: the embedding model fetches relevant data.', intent)).toBe(0);
    expect(
      relationClarity('Models you can use are: word2vec, ada-002 von OpenAI, Azure Vision und mehr.', intent),
    ).toBe(1);
    expect(relationClarity('Models such as BERT embed text.', intent)).toBe(1);
    expect(relationClarity('We tried BM25, dense vectors, and both together.', intent)).toBe(1);
    // other kinds' relations count as clear
    const reason = questionIntent('Why does the lesson chunk the documents?');
    expect(relationClarity('It does so because LLMs have a token limit.', reason)).toBe(1);
  });

  it("gives a loose list relation the square root of the list boost (1.15): the score's parts, hand-computed", async () => {
    // every text the same vector: no embedding lift, so a score is 0.65 x lexical x (0.3 + 0.7 x novelty) x boost
    const embedding = {
      id: 'flat',
      embed: async (texts: readonly string[]) => texts.map(() => Float32Array.from([1, 0, 0])),
    };
    const question = 'Which embedding models does the lesson name?';
    const [qv] = await embedding.embed([question]);
    const loose = 'Embedding models: the retriever fetches the nearest chunks quickly.';
    const clear = 'Embedding models you can use: word2vec, ada-002, CLIP.';
    const source: Source = {
      n: 1,
      chunkId: 'c',
      file: 'rag.md',
      title: 'Notes',
      language: 'en',
      citation: '[rag.md]',
      score: 1,
      denseScore: 1,
      lexicalScore: 1,
      text: `${loose} ${clear} The weather is fine today.`,
    };
    const query = analyzeQuery(question);
    const [a, b] = await scoreSourceSentences(question, qv!, query, [source], embedding);
    const boost = (s: NonNullable<typeof a>) => s.score / (0.65 * s.lexical * (0.3 + 0.7 * s.novelty));
    expect(a!.relation && b!.relation).toBe(true);
    expect(boost(a!)).toBeCloseTo(Math.sqrt(1.15), 6);
    expect(boost(b!)).toBeCloseTo(1.15, 6);
  });
});

describe('a question in a source asks, it does not answer', () => {
  const source = (text: string) => ({
    n: 1,
    chunkId: 'c1',
    file: 'faq.md',
    title: 'notes',
    language: 'en' as const,
    citation: '[faq.md]',
    score: 1,
    denseScore: 1,
    lexicalScore: 1,
    text,
  });
  const scoreOf = async (question: string, text: string, sentence: string) => {
    const embedding = new HashEmbedding({ dimensions: 64 });
    const [qv] = await embedding.embed([question]);
    const scored = await scoreSourceSentences(
      question,
      qv!,
      analyzeQuery(question),
      [source(text)],
      embedding,
    );
    return scored.find((s) => s.text === sentence)!.score;
  };
  const setup = 'I wrote a new attribution method and want to add it to the library.';
  const answer = 'New attribution methods join the library through a pull request with tests.';
  const question = 'How do I add a new attribution method to the library?';

  it('the sentence that sets up a question in its block (a FAQ entry) is damped as the question is', async () => {
    const asked = `${setup} How do I proceed?\n\n${answer}`;
    const stated = `${setup}\n\nHow do I proceed?\n\n${answer}`;
    const inQuestion = await scoreOf(question, asked, setup);
    const alone = await scoreOf(question, stated, setup);
    expect(alone).toBeGreaterThan(0);
    expect(inQuestion / alone).toBeCloseTo(0.3, 10);
    // the answer, a block of its own, is not
    expect(await scoreOf(question, asked, answer)).toBeCloseTo(await scoreOf(question, stated, answer), 10);
  });

  it('a paragraph of more than three sentences that ends with a question keeps its statements', async () => {
    const long = `${setup} It uses gradients. It runs on images. Does it also work for text?\n\n${answer}`;
    const apart = `${setup} It uses gradients. It runs on images.\n\nDoes it also work for text?\n\n${answer}`;
    expect(await scoreOf(question, long, setup)).toBeCloseTo(await scoreOf(question, apart, setup), 10);
  });
});
