/**
 * `pnpm --filter @crp/rag exec tsx scripts/map-eval.ts [--index DIR] [--corpus DIR] [--weights 1,0] [--init random,pca] [--neighbors 15] [--centering 0.5] [--gloss]`
 *
 * Does the embedding map group by meaning or by language? Fits the map (seeded UMAP) of an index on the embedding
 * vectors (`embedding`, the map before issue 24) and in the language-neutral {@link MeaningSpace} once per
 * `--weights` value of its `oneLanguageWeight` (`meaning w=1`: every concept, the map of the second round;
 * `meaning w=0`: concepts only one language's chunks bring in left out, the default now). For each it reports:
 * - **neighbours**, in the space itself (cosine, before the map) and on the map (distance): of each chunk's 10
 *   nearest, the share in the other language, in the same document and about the same topic (the `topic` of the
 *   corpus' `MANIFEST.json`). For German chunks whose topic family (`rag`, `xai`, ...) has English documents, the
 *   share of English neighbours, next to the reference it should approach: the share of an English chunk's
 *   neighbours that come from other documents of its family (a document is always partly an island of its own).
 * - for the cross-lingual questions of the QA files (and, as a check, the others): the **star's rank** of its
 *   supporting chunk, i.e. how many map points lie nearer to the projected question than the nearest chunk
 *   holding the supporting passage (1 = it is the nearest point); whether the supporting document is the
 *   star's nearest;
 * - for each German document, the English documents nearest to most of its chunks on the map.
 * First it prints why German chunks stay apart: the share of German words without a dictionary entry of their own
 * (the most frequent ones), how {@link englishConcepts} reaches English for them (dictionary, base form, compound
 * parts, loan word) and the share of a chunk's weight on concepts only its language brings in. `--centering` is
 * the space's `documentCentering` (default 0.5, as the engine).
 * `--gloss` adds the alternative that was tried and not taken: German chunks embedded through their dictionary
 * gloss with the (English) embedding. The index is the one `pnpm rag:eval` builds (default: its cache folder);
 * it is only read.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  analyze,
  chunkContextText,
  dot,
  englishConcepts,
  FittedMap,
  glossOnly,
  MeaningSpace,
  passageInTexts,
  RagIndex,
  UseLiteEmbedding,
} from '../src/node.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../..');
const { values } = parseArgs({
  options: {
    index: { type: 'string', default: path.join(os.tmpdir(), 'crp-rag-eval-use-lite-static-512') },
    weights: { type: 'string', default: '1,0' },
    neighbors: { type: 'string', default: '15' },
    corpus: { type: 'string', default: path.join(repoRoot, 'vendor/rag-corpus') },
    gloss: { type: 'boolean', default: false },
    init: { type: 'string', default: 'random,pca-by-language' },
    'skip-embedding': { type: 'boolean', default: false },
    seed: { type: 'string', default: '42' },
    centering: { type: 'string', default: '0.5' },
  },
});
const K = 10;
const index = await RagIndex.open({ dir: path.resolve(values.index!), embedding: new UseLiteEmbedding() });
const chunks = index.chunks;
const translator = index.translator;
const lang = chunks.map((c) => c.metadata.language);
const file = chunks.map((c) => c.metadata.file);
console.log(`${chunks.length} chunks (${lang.filter((l) => l === 'de').length} German)`);

// topics of the documents, as the corpus manifest gives them
const topicOf = new Map<string, string>();
const manifest = path.join(values.corpus!, 'MANIFEST.json');
if (existsSync(manifest)) {
  const m = JSON.parse(await readFile(manifest, 'utf8')) as { documents: { file: string; topic: string }[] };
  for (const d of m.documents) topicOf.set(d.file.replace(/^docs\//, ''), d.topic);
}
const topic = file.map((f) => topicOf.get(f) ?? f);
const family = topic.map((t) => t.split('-')[0]!);
// a document's language: that of most of its chunks (a few chunks of a document may be detected otherwise)
const documentLanguage = new Map<string, string>();
for (const f of new Set(file)) {
  const de = chunks.filter((_, i) => file[i] === f && lang[i] === 'de').length;
  documentLanguage.set(f, 2 * de > chunks.filter((_, i) => file[i] === f).length ? 'de' : 'en');
}
// chunks of German documents whose topic family has English documents: where a map by meaning should mix
const overlapping = chunks.map(
  (_, i) =>
    documentLanguage.get(file[i]!) === 'de' &&
    [...documentLanguage].some(([f, l]) => l === 'en' && family[file.indexOf(f)] === family[i]),
);

interface Question {
  question: string;
  cross_lingual?: boolean;
  supporting_passage: { file: string; text: string };
}
const questions: Question[] = [];
for (const f of ['qa.json', 'qa-extra.json', 'qa-natural.json', 'qa-heldout-2.json', 'qa-heldout-3.json']) {
  const p = path.join(values.corpus!, f);
  if (existsSync(p))
    questions.push(...(JSON.parse(await readFile(p, 'utf8')) as { questions: Question[] }).questions);
}

const fmt = (x: number) => x.toFixed(3);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

// why German chunks stay apart: how German words reach English concepts, and weight on one-language concepts
const texts = chunks.map((c) => ({
  text: chunkContextText(c),
  language: c.metadata.language,
  document: c.metadata.file,
}));
{
  let total = 0;
  const routes = new Map<string, number>();
  const untranslated = new Map<string, number>();
  const loans = new Map<string, number>();
  const used = new Set<string>();
  for (const t of texts)
    for (const term of analyze(t.text, t.language)) if (term.startsWith('en:')) used.add(term.slice(3));
  for (const t of texts) {
    for (const term of analyze(t.text, t.language)) {
      if (!term.startsWith('de:')) continue;
      total++;
      const stem = term.slice(3);
      if (!translator || translator.translate(stem, 'de').length === 0)
        untranslated.set(stem, (untranslated.get(stem) ?? 0) + 1);
      if (!translator) continue;
      const { route } = englishConcepts(stem, translator, { used });
      routes.set(route, (routes.get(route) ?? 0) + 1);
      if (route === 'loan-word') loans.set(stem, (loans.get(stem) ?? 0) + 1);
    }
  }
  const top = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 30)
      .map(([t, k]) => `${t} ${k}`)
      .join(', ');
  const n = [...untranslated.values()].reduce((a, b) => a + b, 0);
  console.log(
    `German word occurrences without a dictionary entry of their own: ${fmt(n / total)} of ${total}; most frequent: ${top(untranslated)}`,
  );
  console.log(
    `how German words reach English concepts (englishConcepts): ${[...routes].map(([r, k]) => `${r} ${fmt(k / total)}`).join(', ')}; loan words (taken as spelt), most frequent: ${top(loans)}`,
  );
  const space = MeaningSpace.ofTexts(texts, translator, { oneLanguageWeight: 1, documentCentering: 0 });
  const aligned = MeaningSpace.ofTexts(texts, translator, { oneLanguageWeight: 0, documentCentering: 0 });
  // a unit vector's squared weight on the concepts the aligned space keeps is dot(v, aligned)^2
  for (const l of ['de', 'en'] as const) {
    const shares = chunks
      .map((_, i) => i)
      .filter((i) => lang[i] === l)
      .map((i) => 1 - dot(space.vectors[i]!, aligned.vectors[i]!) ** 2);
    console.log(
      `${l} chunks: mean share of squared weight on concepts only ${l} chunks have: ${fmt(mean(shares))}`,
    );
  }
}

/** Indices of each chunk's K nearest chunks by a distance of two chunk indices. */
function nearest(distance: (i: number, j: number) => number): number[][] {
  return chunks.map((_, i) => {
    const d = chunks.map((__, j) => ({ j, d: j === i ? Number.POSITIVE_INFINITY : distance(i, j) }));
    d.sort((a, b) => a.d - b.d);
    return d.slice(0, K).map((e) => e.j);
  });
}

/** Neighbour shares of German and English chunks. */
function mixing(near: number[][]): string {
  const share = (i: number, test: (j: number) => boolean) => near[i]!.filter(test).length / K;
  const parts: string[] = [];
  for (const l of ['de', 'en'] as const) {
    const mine = chunks.map((_, i) => i).filter((i) => lang[i] === l);
    parts.push(
      `${l}: other language ${fmt(mean(mine.map((i) => share(i, (j) => lang[j] !== l))))}, same document ${fmt(
        mean(mine.map((i) => share(i, (j) => file[j] === file[i]))),
      )}, same topic ${fmt(mean(mine.map((i) => share(i, (j) => topic[j] === topic[i]))))}`,
    );
  }
  const de = chunks.map((_, i) => i).filter((i) => overlapping[i]);
  const en = chunks.map((_, i) => i).filter((i) => documentLanguage.get(file[i]!) === 'en');
  const otherDocSameFamily = (i: number) => share(i, (j) => file[j] !== file[i] && family[j] === family[i]);
  parts.push(
    `chunks of German documents whose topic English documents share (${de.length}): English ${fmt(
      mean(de.map((i) => share(i, (j) => lang[j] === 'en'))),
    )}, other document of the topic family ${fmt(mean(de.map(otherDocSameFamily)))} (chunks of English documents: ${fmt(
      mean(en.map(otherDocSameFamily)),
    )})`,
  );
  return parts.join('; ');
}

const spaces: {
  name: string;
  vectors: readonly Float32Array[];
  /** What a question is compared with, when not `vectors` (the meaning space's uncentred vectors). */
  compareWith?: readonly Float32Array[];
  query: (q: string) => Promise<Float32Array>;
}[] = values['skip-embedding']
  ? []
  : [{ name: 'embedding', vectors: index.vectors, query: (q) => index.embedQuery(q) }];
for (const w of values.weights!.split(',').map(Number)) {
  // as the engine builds it (MeaningSpace.ofTexts), centred by document as --centering says
  const space = MeaningSpace.ofTexts(texts, translator, {
    oneLanguageWeight: w,
    documentCentering: Number(values.centering),
  });
  spaces.push({
    name: `meaning w=${w} centering ${values.centering}`,
    vectors: space.vectors,
    compareWith: space.questionVectors,
    query: async (q) => space.embedQuery(index.analyzeQuestion(q)),
  });
}
if (values.gloss && translator) {
  const vectors = [...index.vectors];
  const de = chunks.map((c, i) => ({ c, i })).filter(({ c }) => c.metadata.language === 'de');
  const glossed = await index.embedding.embed(
    de.map(({ c }) => glossOnly(chunkContextText(c), 'de', translator)),
  );
  de.forEach(({ i }, j) => {
    vectors[i] = glossed[j]!;
  });
  spaces.push({
    name: 'gloss',
    vectors,
    query: async (q) =>
      index.analyzeQuestion(q).language === 'de'
        ? (await index.embedding.embed([glossOnly(q, 'de', translator)]))[0]!
        : index.embedQuery(q),
  });
}

const supportingOf = questions.map((q) => {
  const f = q.supporting_passage.file.replace(/^docs\//, '');
  const ids = new Set(
    chunks
      .filter((c) => c.metadata.file === f && passageInTexts(q.supporting_passage.text, [c.text]))
      .map((c) => c.id),
  );
  return { file: f, ids };
});

for (const nNeighbors of values.neighbors!.split(',').map(Number)) {
  for (const [s, init] of spaces.flatMap((s) => values.init!.split(',').map((i) => [s, i] as const))) {
    const t = performance.now();
    const map = FittedMap.fit(
      s.vectors,
      {
        space: s.name === 'embedding' ? 'embedding' : 'meaning',
        nNeighbors,
        seed: Number(values.seed),
        init: init === 'random' ? 'random' : 'pca',
      },
      init === 'pca-by-language' ? lang : undefined,
    );
    const fitS = (performance.now() - t) / 1000;
    const plane = map.project(chunks, s.vectors, s.vectors[0]!, []);
    const at = new Map(plane.points.map((p) => [p.chunkId, p]));
    const xy = chunks.map((c) => at.get(c.id)!);
    const label = `${s.name} (UMAP from ${init}, ${nNeighbors} neighbours)`;
    console.log(`\n${label}, fitted in ${fitS.toFixed(1)} s`);
    console.log(`  space (cosine): ${mixing(nearest((i, j) => -dot(s.vectors[i]!, s.vectors[j]!)))}`);
    console.log(
      `  map (distance): ${mixing(nearest((i, j) => Math.hypot(xy[i]!.x - xy[j]!.x, xy[i]!.y - xy[j]!.y)))}`,
    );
    // stars of the questions
    const groups = new Map<string, { ranks: number[]; firstFile: number }>();
    for (const [qi, q] of questions.entries()) {
      const sup = supportingOf[qi]!;
      if (sup.ids.size === 0) continue;
      const qv = await s.query(q.question);
      const m = map.project(chunks, s.vectors, qv, [], s.compareWith);
      const d = m.points
        .map((p) => ({ id: p.chunkId, file: p.file, d: Math.hypot(p.x - m.query.x, p.y - m.query.y) }))
        .sort((a, b) => a.d - b.d);
      const key = q.cross_lingual ? 'cross-lingual' : 'same language';
      const g = groups.get(key) ?? { ranks: [], firstFile: 0 };
      g.ranks.push(d.findIndex((p) => sup.ids.has(p.id)) + 1);
      if (d[0]!.file === sup.file) g.firstFile++;
      groups.set(key, g);
    }
    for (const [key, g] of groups) {
      console.log(
        `  ${key} questions (${g.ranks.length}): supporting document nearest the star ${fmt(g.firstFile / g.ranks.length)}; star's rank of the supporting chunk median ${median(g.ranks)}, within 10 ${fmt(g.ranks.filter((r) => r <= 10).length / g.ranks.length)}, within 50 ${fmt(g.ranks.filter((r) => r <= 50).length / g.ranks.length)}`,
      );
    }
    // for each German document: the English documents nearest to most of its chunks on the map
    const english = chunks.map((_, i) => i).filter((i) => lang[i] === 'en');
    const tallies = new Map<string, Map<string, number>>();
    chunks.forEach((_, i) => {
      if (lang[i] !== 'de' || !file[i]!.startsWith('de-')) return;
      let best = english[0]!;
      for (const j of english)
        if (
          Math.hypot(xy[j]!.x - xy[i]!.x, xy[j]!.y - xy[i]!.y) <
          Math.hypot(xy[best]!.x - xy[i]!.x, xy[best]!.y - xy[i]!.y)
        )
          best = j;
      const tally = tallies.get(file[i]!) ?? new Map<string, number>();
      tally.set(file[best]!, (tally.get(file[best]!) ?? 0) + 1);
      tallies.set(file[i]!, tally);
    });
    for (const [f, tally] of tallies) {
      const n = [...tally.values()].reduce((a, b) => a + b, 0);
      const top = [...tally].sort((a, b) => b[1] - a[1]).slice(0, 3);
      console.log(
        `  ${f} (${topicOf.get(f) ?? '?'}): nearest English ${top.map(([g, k]) => `${g} (${topicOf.get(g) ?? '?'}) ${((100 * k) / n).toFixed(0)}%`).join(', ')}`,
      );
    }
  }
}
