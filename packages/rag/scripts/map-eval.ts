/**
 * `pnpm --filter @crp/rag exec tsx scripts/map-eval.ts [--index DIR] [--corpus DIR] [--variants 'doc=0.5;doc=0.5,xk=0;lang=1,k=1;embedding;gloss'] [--init random,pca,pca-by-language] [--neighbors 15] [--seed 42] [--questions tuning|all] [--per-document]`
 *
 * Does the embedding map group by meaning or by language, and does a question's star lie among its sources? Fits
 * the map (seeded UMAP) once per `--variants` entry (`;`-separated): `embedding` (the index's embedding vectors,
 * the map before issue 24), `gloss` (German chunks embedded through their dictionary gloss: tried, not taken), or
 * a variant of the language-neutral {@link MeaningSpace} as comma-separated `key=value`: `w` (oneLanguageWeight,
 * default 1), `doc` (documentCentering, default 0; the engine: 0.5), `lang` (languageCentering, default 0), `star`
 * (`raw`: the question compared with the uncentred chunk vectors, as the engine; `centred`: centred by its
 * language and compared with the map's vectors; `lang`: centred by its language and compared with the chunks
 * centred by language only), `dense` (weight of the embedding vectors, each language's mean removed, joined to the
 * meaning vectors), `from` (where that dense part comes from: `index`, the index's vectors; `gloss`, German chunks
 * and questions embedded through their dictionary gloss; `procrustes`, German ones mapped into the English space
 * by an orthogonal map learnt from the dictionary's word pairs, {@link procrustesMap}), `xk` (the map's
 * `crossLingualNeighbors`; default the engine's, 5; `xk=0` is the map without cross-lingual pairs), `xfloor`, `xratio`,
 * `xrank` and `xdoc` (its `crossLingualFloor`, `crossLingualRatio`, `crossLingualRank` and `crossLingualDocumentRatio`;
 * `xdoc` default the engine's, 0.6; `xdoc=0`: pairs without the document gate) and `k` (the star's
 * `starNeighbors`; default the engine's, 1). Questions: those of the tuning sets (`qa.json`, `qa-extra.json`,
 * `qa-natural.json`, `qa-heldout-2.json`), or of every `qa*.json` with `--questions all`. For each it reports:
 * - **neighbours**, in the space itself (cosine, before the map) and on the map (distance): of each chunk's 10
 *   nearest, the share in the other language, in the same document and about the same topic (the `topic` of the
 *   corpus' `MANIFEST.json`). For German chunks whose topic family (`rag`, `xai`, ...) has English documents, the
 *   share of English neighbours, next to the reference it should approach: the share of an English chunk's
 *   neighbours that come from other documents of its family (a document is always partly an island of its own).
 * - the **cross-lingual layout rank** ({@link layoutRanks}), in the space and on the map;
 * - for each German document, the median cosine of its chunks' `nNeighbors - 1`-th nearest German chunk and of
 *   their nearest English chunk (what `xratio` compares);
 * - for the cross-lingual and the same-language questions: the **star's rank** of its supporting chunk, i.e. how
 *   many map points lie nearer to the projected question than the nearest chunk holding the supporting passage
 *   (1 = it is the nearest point); whether the supporting document is the star's nearest; the share of the
 *   question's 5 sources (the engine's search) among the star's 20 nearest points;
 * - with `--per-document`, for each German document the English documents nearest to most of its chunks.
 * At the end, a table of every variant with the figures of the map trade-off: German chunks' own-document share
 * (space and map), the English neighbours of German chunks of shared topics on the map, and both kinds of stars.
 * First it prints why German chunks stay apart: the share of German words without a dictionary entry of their own
 * (the most frequent ones), how {@link englishConcepts} reaches English for them (dictionary, base form, compound
 * parts, loan word) and the share of a chunk's weight on concepts only its language brings in. The index is the
 * one `pnpm rag:eval` builds (default: its cache folder); it is only read.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
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
import { TUNING_SETS } from './tuning-engine.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../..');
const { values } = parseArgs({
  options: {
    index: { type: 'string', default: path.join(os.tmpdir(), 'crp-rag-eval-use-lite-static-512') },
    variants: { type: 'string', default: 'doc=0.5' },
    'per-document': { type: 'boolean', default: false },
    neighbors: { type: 'string', default: '15' },
    corpus: { type: 'string', default: path.join(repoRoot, 'vendor/rag-corpus') },
    init: { type: 'string', default: 'random,pca-by-language' },
    seed: { type: 'string', default: '42' },
    questions: { type: 'string', default: 'tuning' },
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
// every question set of the corpus (qa.json, qa-extra.json, qa-natural.json, qa-heldout-*.json, ...)
// the tuning sets (TUNING_SETS, as named in the README's fifth round of answer selection) unless `--questions all`
const questionFiles = (await readdir(values.corpus!))
  .filter((f) => /^qa.*\.json$/.test(f) && (values.questions === 'all' || TUNING_SETS.includes(f)))
  .sort();
for (const f of questionFiles) {
  const p = path.join(values.corpus!, f);
  questions.push(...(JSON.parse(await readFile(p, 'utf8')) as { questions: Question[] }).questions);
}
console.log(`${questions.length} questions of ${questionFiles.join(', ')}`);

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

interface Mixing {
  /** Share of the K nearest in the other language, the same document, the same topic, per language. */
  readonly byLanguage: Record<'de' | 'en', { other: number; document: number; topic: number }>;
  /** Chunks of German documents whose topic English documents share: share of English neighbours. */
  readonly overlapEnglish: number;
  readonly overlapFamily: number;
  /** The reference: chunks of English documents, share of neighbours from other documents of their family. */
  readonly englishFamily: number;
  readonly overlapping: number;
}

/** Neighbour shares of German and English chunks. */
function mixing(near: number[][]): Mixing {
  const share = (i: number, test: (j: number) => boolean) => near[i]!.filter(test).length / K;
  const byLanguage = {} as Mixing['byLanguage'];
  for (const l of ['de', 'en'] as const) {
    const mine = chunks.map((_, i) => i).filter((i) => lang[i] === l);
    byLanguage[l] = {
      other: mean(mine.map((i) => share(i, (j) => lang[j] !== l))),
      document: mean(mine.map((i) => share(i, (j) => file[j] === file[i]))),
      topic: mean(mine.map((i) => share(i, (j) => topic[j] === topic[i]))),
    };
  }
  const de = chunks.map((_, i) => i).filter((i) => overlapping[i]);
  const en = chunks.map((_, i) => i).filter((i) => documentLanguage.get(file[i]!) === 'en');
  const otherDocSameFamily = (i: number) => share(i, (j) => file[j] !== file[i] && family[j] === family[i]);
  return {
    byLanguage,
    overlapEnglish: mean(de.map((i) => share(i, (j) => lang[j] === 'en'))),
    overlapFamily: mean(de.map(otherDocSameFamily)),
    englishFamily: mean(en.map(otherDocSameFamily)),
    overlapping: de.length,
  };
}

const describe = (m: Mixing) =>
  [
    ...(['de', 'en'] as const).map(
      (l) =>
        `${l}: other language ${fmt(m.byLanguage[l].other)}, same document ${fmt(m.byLanguage[l].document)}, same topic ${fmt(m.byLanguage[l].topic)}`,
    ),
    `chunks of German documents whose topic English documents share (${m.overlapping}): English ${fmt(m.overlapEnglish)}, other document of the topic family ${fmt(m.overlapFamily)} (chunks of English documents: ${fmt(m.englishFamily)})`,
  ].join('; ');

/**
 * The cross-lingual layout rank (the README's definition): for each chunk of a German document, all other chunks
 * (its own document's too) ordered by distance from it; its rank is the position of the first English chunk of
 * its topic (the manifest's `topic`; the topic family, e.g. `xai`, when no English document has the exact topic;
 * any English chunk for a document whose family no English document shares: the control, where a small rank is
 * wrong). Per German document: median rank and share within 10; the reference, English chunks of the topics
 * German documents share, with the English chunks of other documents of their topic as peers: how near a
 * chunk lies to another document on its subject when language is not in the way.
 */
interface LayoutRank {
  readonly label: string;
  readonly n: number;
  readonly median: number;
  readonly within10: number;
}
const peerRule = (i: number): ((j: number) => boolean) => {
  const english = (j: number) => documentLanguage.get(file[j]!) === 'en';
  const exact = chunks.some((_, j) => english(j) && topic[j] === topic[i]);
  const familyShared = chunks.some((_, j) => english(j) && family[j] === family[i]);
  if (exact) return (j) => english(j) && topic[j] === topic[i];
  if (familyShared) return (j) => english(j) && family[j] === family[i];
  return english;
};
const germanDocuments = [...documentLanguage].filter(([, l]) => l === 'de').map(([f]) => f);
const sharedTopics = new Set(
  chunks
    .map((_, i) => i)
    .filter(
      (i) =>
        documentLanguage.get(file[i]!) === 'de' &&
        chunks.some((__, j) => documentLanguage.get(file[j]!) === 'en' && topic[j] === topic[i]),
    )
    .map((i) => topic[i]!),
);
function layoutRanks(distance: (i: number, j: number) => number): LayoutRank[] {
  const rankOf = (i: number, peer: (j: number) => boolean) => {
    const others = chunks
      .map((_, j) => j)
      .filter((j) => j !== i)
      .map((j) => ({ j, d: distance(i, j) }))
      .sort((a, b) => a.d - b.d || a.j - b.j);
    return others.findIndex((e) => peer(e.j)) + 1;
  };
  const summary = (label: string, members: number[], peer: (i: number) => (j: number) => boolean) => {
    const ranks = members.map((i) => rankOf(i, peer(i)));
    return {
      label,
      n: ranks.length,
      median: median(ranks),
      within10: ranks.filter((r) => r <= 10).length / Math.max(1, ranks.length),
    };
  };
  const all = chunks.map((_, i) => i);
  return [
    ...germanDocuments.map((f) =>
      summary(
        `${f} (${topicOf.get(f) ?? '?'})`,
        all.filter((i) => file[i] === f),
        peerRule,
      ),
    ),
    summary(
      `reference: English chunks of ${[...sharedTopics].join(', ')}`,
      all.filter((i) => documentLanguage.get(file[i]!) === 'en' && sharedTopics.has(topic[i]!)),
      (i) => (j) => file[j] !== file[i] && documentLanguage.get(file[j]!) === 'en' && topic[j] === topic[i],
    ),
  ];
}
const describeRanks = (ranks: readonly LayoutRank[]) =>
  ranks.map((r) => `${r.label} (${r.n}): median ${r.median}, within 10 ${fmt(r.within10)}`).join('; ');

/**
 * A map to measure: the vectors it is fitted on, and how a question is placed (its vector, and the chunk vectors
 * it is compared with when not `vectors`).
 */
interface Variant {
  name: string;
  space: 'meaning' | 'embedding';
  vectors: readonly Float32Array[];
  compareWith?: readonly Float32Array[];
  query: (q: string) => Promise<Float32Array>;
  /** The vectors' dot products from a space's sparse form (as the engine fits the map). */
  similarities?: (indices: readonly number[]) => Float32Array;
  /** The star's `starNeighbors`. */
  starNeighbors?: number | undefined;
  /** The map's `crossLingualNeighbors` and `crossLingualFloor`. */
  crossLingualNeighbors?: number | undefined;
  crossLingualFloor?: number | undefined;
  /** The map's `crossLingualRatio`. */
  crossLingualRatio?: number | undefined;
  /** The map's `crossLingualRank`. */
  crossLingualRank?: number | undefined;
  /** The map's `crossLingualDocumentRatio`. */
  crossLingualDocumentRatio?: number | undefined;
}

const unit = (v: Float32Array) => {
  const n = Math.sqrt(dot(v, v)) || 1;
  return v.map((x) => x / n);
};
/** Each language's mean of unit vectors. */
function languageMeans(vectors: readonly Float32Array[]): Map<string, Float32Array> {
  const means = new Map<string, Float32Array>();
  for (const l of new Set(lang)) {
    const mine = vectors.filter((_, i) => lang[i] === l);
    const m = new Float32Array(vectors[0]!.length);
    for (const v of mine) for (let d = 0; d < m.length; d++) m[d]! += v[d]! / mine.length;
    means.set(l, m);
  }
  return means;
}
const concat = (a: Float32Array, wa: number, b: Float32Array, wb: number) => {
  const v = new Float32Array(a.length + b.length);
  a.forEach((x, d) => {
    v[d] = Math.sqrt(wa) * x;
  });
  b.forEach((x, d) => {
    v[a.length + d] = Math.sqrt(wb) * x;
  });
  return unit(v);
};

const spaceCache = new Map<string, MeaningSpace>();
function spaceOf(w: number, doc: number, byLanguage: number): MeaningSpace {
  const key = `${w} ${doc} ${byLanguage}`;
  let space = spaceCache.get(key);
  if (!space) {
    // as the engine builds it (MeaningSpace.ofTexts)
    space = MeaningSpace.ofTexts(texts, translator, {
      oneLanguageWeight: w,
      documentCentering: doc,
      languageCentering: byLanguage,
    });
    spaceCache.set(key, space);
  }
  return space;
}

/**
 * A variant of the map by meaning: `w` (oneLanguageWeight, default 1), `doc` (documentCentering, default 0),
 * `lang` (languageCentering, default 0), `star` (how the question is placed: `raw`, its vector compared with the
 * uncentred chunk vectors; `centred`, centred by its language and compared with the map's vectors; `lang`,
 * centred by its language and compared with the chunk vectors centred by language only), `dense` (weight of the
 * index's embedding vectors, each language's mean removed, joined to the meaning vectors; default 0), `k` (the
 * star's `starNeighbors`, default the engine's).
 */
async function meaningVariant(spec: string): Promise<Variant> {
  const o = new Map(spec.split(',').map((kv) => kv.split('=') as [string, string]));
  const w = Number(o.get('w') ?? 1);
  const doc = Number(o.get('doc') ?? 0);
  const byLanguage = Number(o.get('lang') ?? 0);
  const star = o.get('star') ?? 'raw';
  const denseWeight = Number(o.get('dense') ?? 0);
  // without `k`, the engine's default
  const starNeighbors = o.has('k') ? Number(o.get('k')) : undefined;
  const crossLingualNeighbors = o.has('xk') ? Number(o.get('xk')) : undefined;
  const crossLingualFloor = o.has('xfloor') ? Number(o.get('xfloor')) : undefined;
  const crossLingualRatio = o.has('xratio') ? Number(o.get('xratio')) : undefined;
  const crossLingualRank = o.has('xrank') ? Number(o.get('xrank')) : undefined;
  const crossLingualDocumentRatio = o.has('xdoc') ? Number(o.get('xdoc')) : undefined;
  const from = o.get('from') ?? 'index';
  const space = spaceOf(w, doc, byLanguage);
  const compare =
    star === 'raw'
      ? space.questionVectors
      : star === 'lang'
        ? spaceOf(w, 0, byLanguage).vectors
        : space.vectors;
  const meaningQuery = (q: string) => {
    const analysed = index.analyzeQuestion(q);
    const v = space.embedQuery(analysed);
    return star === 'raw' ? v : space.centerByLanguage(v, analysed.language);
  };
  if (denseWeight === 0)
    return {
      name: spec,
      space: 'meaning',
      vectors: space.vectors,
      compareWith: compare,
      query: async (q) => meaningQuery(q),
      similarities: (indices) => space.similarities(indices),
      starNeighbors,
      crossLingualNeighbors,
      crossLingualFloor,
      crossLingualRatio,
      crossLingualRank,
      crossLingualDocumentRatio,
    };
  // the dense part: the index's vectors (`from=index`), German chunks through their gloss (`from=gloss`), or
  // German chunks' vectors mapped into the English ones by the dictionary's Procrustes map (`from=procrustes`)
  const denseOf = await densePart(from);
  const means = languageMeans(denseOf.vectors);
  const centre = (v: Float32Array, l: string) => unit(v.map((x, d) => x - (means.get(l)?.[d] ?? 0)));
  const dense = denseOf.vectors.map((v, i) => centre(v, lang[i]!));
  return {
    name: spec,
    space: 'meaning',
    vectors: space.vectors.map((v, i) => concat(dense[i]!, denseWeight, v, 1 - denseWeight)),
    compareWith: compare.map((v, i) => concat(dense[i]!, denseWeight, v, 1 - denseWeight)),
    starNeighbors,
    crossLingualNeighbors,
    crossLingualFloor,
    crossLingualRatio,
    crossLingualRank,
    crossLingualDocumentRatio,
    query: async (q) => {
      const language = index.analyzeQuestion(q).language;
      const qv = centre(await denseOf.query(q, language), language);
      return concat(qv, denseWeight, meaningQuery(q), 1 - denseWeight);
    },
  };
}

const denseCache = new Map<string, Promise<DensePart>>();
interface DensePart {
  readonly vectors: readonly Float32Array[];
  readonly query: (q: string, language: string) => Promise<Float32Array>;
}
function densePart(from: string): Promise<DensePart> {
  let part = denseCache.get(from);
  if (!part) {
    part = (async (): Promise<DensePart> => {
      if (from === 'index' || !translator)
        return { vectors: index.vectors, query: (q) => index.embedQuery(q) };
      if (from === 'gloss') {
        // German text said in English words, word by word, then embedded by the English model
        const vectors = [...index.vectors];
        const de = chunks.map((c, i) => ({ c, i })).filter(({ c }) => c.metadata.language === 'de');
        const glossed = await index.embedding.embed(
          de.map(({ c }) => glossOnly(chunkContextText(c), 'de', translator)),
        );
        de.forEach(({ i }, j) => {
          vectors[i] = glossed[j]!;
        });
        return {
          vectors,
          query: async (q, l) =>
            l === 'de'
              ? (await index.embedding.embed([glossOnly(q, 'de', translator)]))[0]!
              : index.embedQuery(q),
        };
      }
      if (from === 'procrustes') {
        const w = await procrustesMap();
        return {
          vectors: index.vectors.map((v, i) => (lang[i] === 'de' ? unit(w(v)) : v)),
          query: async (q, l) => {
            const v = await index.embedQuery(q);
            return l === 'de' ? unit(w(v)) : v;
          },
        };
      }
      throw new Error(`unknown dense part "${from}"; valid: index, gloss, procrustes`);
    })();
    denseCache.set(from, part);
  }
  return part;
}

/**
 * The orthogonal map W that takes the embedding of a German word to that of its English translation, learnt
 * from the dictionary's pairs (orthogonal Procrustes, as MUSE refines its word translation: W = U V^T of the SVD
 * of sum y x^T). The pairs: each German stem of the German chunks with a dictionary translation, paired with its
 * first (highest-weight) translation, each pair once; both sides embedded as text by the index's embedding. The
 * polar factor U V^T is computed by the Newton-Schulz iteration A <- 1.5 A - 0.5 A A^T A from A = M / |M|_F
 * (only products; every singular value goes to 1).
 */
async function procrustesMap(): Promise<(v: Float32Array) => Float32Array> {
  const counts = new Map<string, number>();
  for (const t of texts)
    if (t.language === 'de')
      for (const term of analyze(t.text, 'de'))
        counts.set(term.slice(3), (counts.get(term.slice(3)) ?? 0) + 1);
  const pairs: [string, string][] = [];
  for (const [stem] of [...counts].sort((a, b) => b[1] - a[1])) {
    const best = translator!.translate(stem, 'de')[0];
    if (best && best.term !== stem) pairs.push([stem, best.term]);
  }
  const x = await index.embedding.embed(pairs.map((p) => p[0]));
  const y = await index.embedding.embed(pairs.map((p) => p[1]));
  const d = x[0]!.length;
  // M = sum_k y_k x_k^T (d x d, row-major)
  let a = new Float64Array(d * d);
  for (let k = 0; k < pairs.length; k++) {
    const xk = x[k]!;
    const yk = y[k]!;
    for (let i = 0; i < d; i++) {
      const yi = yk[i]!;
      for (let j = 0; j < d; j++) a[i * d + j]! += yi * xk[j]!;
    }
  }
  const frobenius = Math.sqrt(a.reduce((sum, v) => sum + v * v, 0));
  a = a.map((v) => v / frobenius);
  const times = (p: Float64Array, q: Float64Array, transposeP: boolean) => {
    // transposeP ? p^T q : p q
    const out = new Float64Array(d * d);
    for (let i = 0; i < d; i++)
      for (let k = 0; k < d; k++) {
        const pik = transposeP ? p[k * d + i]! : p[i * d + k]!;
        if (pik === 0) continue;
        for (let j = 0; j < d; j++) out[i * d + j]! += pik * q[k * d + j]!;
      }
    return out;
  };
  let change = 1;
  let it = 0;
  for (; it < 60 && change > 1e-6; it++) {
    const ata = times(a, a, true);
    const next = times(a, ata, false).map((v, e) => 1.5 * a[e]! - 0.5 * v);
    change = Math.sqrt(next.reduce((sum, v, e) => sum + (v - a[e]!) ** 2, 0));
    a = next;
  }
  // the fit: mean cosine of W x and y over the pairs, and of x and y without the map
  const apply = (v: Float32Array) => {
    const out = new Float32Array(d);
    for (let i = 0; i < d; i++) {
      let sum = 0;
      for (let j = 0; j < d; j++) sum += a[i * d + j]! * v[j]!;
      out[i] = sum;
    }
    return out;
  };
  const cos = (p: Float32Array, q: Float32Array) => dot(p, q) / (Math.sqrt(dot(p, p) * dot(q, q)) || 1);
  console.log(
    `Procrustes map from ${pairs.length} dictionary pairs, ${it} Newton-Schulz steps (last change ${change.toExponential(1)}): mean cosine of a pair ${fmt(mean(pairs.map((_, k) => cos(x[k]!, y[k]!))))} -> ${fmt(mean(pairs.map((_, k) => cos(apply(x[k]!), y[k]!))))}`,
  );
  return apply;
}

const variants: Variant[] = [];
for (const spec of values.variants!.split(';')) {
  if (spec === 'embedding')
    variants.push({
      name: spec,
      space: 'embedding',
      vectors: index.vectors,
      query: (q) => index.embedQuery(q),
    });
  else if (spec === 'gloss' && translator) {
    // German chunks embedded through their dictionary gloss with the (English) embedding: tried, not taken
    const vectors = [...index.vectors];
    const de = chunks.map((c, i) => ({ c, i })).filter(({ c }) => c.metadata.language === 'de');
    const glossed = await index.embedding.embed(
      de.map(({ c }) => glossOnly(chunkContextText(c), 'de', translator)),
    );
    de.forEach(({ i }, j) => {
      vectors[i] = glossed[j]!;
    });
    variants.push({
      name: spec,
      space: 'embedding',
      vectors,
      query: async (q) =>
        index.analyzeQuestion(q).language === 'de'
          ? (await index.embedding.embed([glossOnly(q, 'de', translator)]))[0]!
          : index.embedQuery(q),
    });
  } else variants.push(await meaningVariant(spec));
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

// the 5 sources `ask` shows for each question (the engine's default search), for "sources around the star"
const sourcesOf: string[][] = [];
for (const q of questions)
  sourcesOf.push((await index.search(q.question, { topK: 5 })).map((h) => h.chunk.id));

interface Row {
  label: string;
  fitS: number;
  space: Mixing;
  map: Mixing;
  stars: Map<string, { n: number; firstFile: number; median: number; within10: number; around: number }>;
  rankSpace: LayoutRank[];
  rankMap: LayoutRank[];
}
const rows: Row[] = [];
for (const nNeighbors of values.neighbors!.split(',').map(Number)) {
  for (const [s, init] of variants.flatMap((s) => values.init!.split(',').map((i) => [s, i] as const))) {
    const t = performance.now();
    const map = FittedMap.fit(
      s.vectors,
      {
        space: s.space,
        nNeighbors,
        seed: Number(values.seed),
        init: init === 'random' ? 'random' : 'pca',
        ...(s.starNeighbors ? { starNeighbors: s.starNeighbors } : {}),
        ...(s.crossLingualNeighbors !== undefined ? { crossLingualNeighbors: s.crossLingualNeighbors } : {}),
        ...(s.crossLingualFloor !== undefined ? { crossLingualFloor: s.crossLingualFloor } : {}),
        ...(s.crossLingualRatio !== undefined ? { crossLingualRatio: s.crossLingualRatio } : {}),
        ...(s.crossLingualRank !== undefined ? { crossLingualRank: s.crossLingualRank } : {}),
        ...(s.crossLingualDocumentRatio !== undefined
          ? { crossLingualDocumentRatio: s.crossLingualDocumentRatio }
          : {}),
      },
      init === 'pca-by-language' ? lang : undefined,
      s.similarities,
      file,
    );
    const fitS = (performance.now() - t) / 1000;
    const plane = map.project(chunks, s.vectors, s.vectors[0]!, []);
    const at = new Map(plane.points.map((p) => [p.chunkId, p]));
    const xy = chunks.map((c) => at.get(c.id)!);
    const label = `${s.name} (UMAP from ${init}, ${nNeighbors} neighbours)`;
    console.log(`\n${label}, fitted in ${fitS.toFixed(1)} s`);
    const inSpace = mixing(nearest((i, j) => -dot(s.vectors[i]!, s.vectors[j]!)));
    const onMap = mixing(nearest((i, j) => Math.hypot(xy[i]!.x - xy[j]!.x, xy[i]!.y - xy[j]!.y)));
    console.log(`  space (cosine): ${describe(inSpace)}`);
    console.log(`  map (distance): ${describe(onMap)}`);
    const rankSpace = layoutRanks((i, j) => -dot(s.vectors[i]!, s.vectors[j]!));
    const rankMap = layoutRanks((i, j) => Math.hypot(xy[i]!.x - xy[j]!.x, xy[i]!.y - xy[j]!.y));
    console.log(`  cross-lingual layout rank, space: ${describeRanks(rankSpace)}`);
    console.log(`  cross-lingual layout rank, map: ${describeRanks(rankMap)}`);
    // what the relative criteria (crossLingualRatio) see, per German document: the cosine of a chunk's
    // (nNeighbors - 1)-th nearest German chunk and of its nearest English one, medians
    const own = nNeighbors - 1;
    const perDocument = new Map<string, { own: number[]; english: number[] }>();
    chunks.forEach((_, i) => {
      if (lang[i] !== 'de') return;
      const sims = (l: string) =>
        chunks
          .map((_, j) => j)
          .filter((j) => j !== i && lang[j] === l)
          .map((j) => dot(s.vectors[i]!, s.vectors[j]!))
          .sort((a, b) => b - a);
      const entry = perDocument.get(file[i]!) ?? { own: [], english: [] };
      entry.own.push(sims('de')[own - 1] ?? Number.NaN);
      entry.english.push(sims('en')[0] ?? Number.NaN);
      perDocument.set(file[i]!, entry);
    });
    console.log(
      `  cosines (medians) of a German chunk's ${own}th nearest German chunk / nearest English chunk: ${[
        ...perDocument,
      ]
        .map(([f, e]) => `${f} ${median(e.own).toFixed(3)} / ${median(e.english).toFixed(3)}`)
        .join('; ')}`,
    );
    // what the document gate (crossLingualDocumentRatio) sees: the cosine of the documents' mean vectors, each
    // German document's most alike English ones, against the reference (median over documents of the cosine
    // with their most alike document of the same language)
    const sums = new Map<string, Float64Array>();
    s.vectors.forEach((v, i) => {
      const sum = sums.get(file[i]!) ?? new Float64Array(v.length);
      for (let d = 0; d < v.length; d++) sum[d]! += v[d]!;
      sums.set(file[i]!, sum);
    });
    const documentCosine = (f: string, g: string) => {
      const a = sums.get(f)!;
      const b = sums.get(g)!;
      let ab = 0;
      let aa = 0;
      let bb = 0;
      for (let d = 0; d < a.length; d++) {
        ab += a[d]! * b[d]!;
        aa += a[d]! ** 2;
        bb += b[d]! ** 2;
      }
      return ab / Math.sqrt(aa * bb);
    };
    const documents = [...sums.keys()];
    const reference = median(
      documents.map((f) =>
        Math.max(
          ...documents
            .filter((g) => g !== f && documentLanguage.get(g) === documentLanguage.get(f))
            .map((g) => documentCosine(f, g)),
        ),
      ),
    );
    console.log(
      `  documents' mean vectors: reference (median cosine with the most alike document of the same language) ${reference.toFixed(3)}; German documents' most alike English ones: ${germanDocuments
        .map(
          (f) =>
            `${f} ${documents
              .filter((g) => documentLanguage.get(g) === 'en')
              .map((g) => ({ g, c: documentCosine(f, g) }))
              .sort((a, b) => b.c - a.c)
              .slice(0, 3)
              .map((e) => `${e.g} ${e.c.toFixed(3)} (${(e.c / reference).toFixed(2)})`)
              .join(', ')}`,
        )
        .join('; ')}`,
    );
    // stars of the questions
    const groups = new Map<string, { ranks: number[]; firstFile: number; around: number[] }>();
    for (const [qi, q] of questions.entries()) {
      const sup = supportingOf[qi]!;
      if (sup.ids.size === 0) continue;
      const qv = await s.query(q.question);
      const m = map.project(chunks, s.vectors, qv, [], s.compareWith);
      const d = m.points
        .map((p) => ({ id: p.chunkId, file: p.file, d: Math.hypot(p.x - m.query.x, p.y - m.query.y) }))
        .sort((a, b) => a.d - b.d);
      const key = q.cross_lingual ? 'cross-lingual' : 'same language';
      const g = groups.get(key) ?? { ranks: [], firstFile: 0, around: [] };
      // sources around the star: the share of the question's 5 sources among the star's 20 nearest points
      const near = new Set(d.slice(0, 20).map((p) => p.id));
      const sources = sourcesOf[qi]!;
      g.around.push(sources.filter((id) => near.has(id)).length / Math.max(1, sources.length));
      g.ranks.push(d.findIndex((p) => sup.ids.has(p.id)) + 1);
      if (d[0]!.file === sup.file) g.firstFile++;
      groups.set(key, g);
    }
    const stars: Row['stars'] = new Map();
    for (const [key, g] of groups) {
      const star = {
        n: g.ranks.length,
        firstFile: g.firstFile / g.ranks.length,
        median: median(g.ranks),
        within10: g.ranks.filter((r) => r <= 10).length / g.ranks.length,
        around: mean(g.around),
      };
      stars.set(key, star);
      console.log(
        `  ${key} questions (${g.ranks.length}): supporting document nearest the star ${fmt(star.firstFile)}; star's rank of the supporting chunk median ${star.median}, within 10 ${fmt(star.within10)}, within 50 ${fmt(g.ranks.filter((r) => r <= 50).length / g.ranks.length)}; its 5 sources among the star's 20 nearest ${fmt(star.around)}`,
      );
    }
    rows.push({ label, fitS, space: inSpace, map: onMap, stars, rankSpace, rankMap });
    if (!values['per-document']) continue;
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

// the three figures of the map trade-off for every variant, then the map's own mixing
const star = (r: Row, key: string) =>
  r.stars.get(key) ?? {
    n: 0,
    firstFile: Number.NaN,
    median: Number.NaN,
    within10: Number.NaN,
    around: Number.NaN,
  };
console.log(
  `\n| variant | German chunks: own document of 10 nearest (space) | map | German chunks of shared topics: English neighbours on the map | ${rows[0]!.rankMap.map((r) => `layout rank, map: ${r.label.split(' ')[0]} median | within 10`).join(' | ')} | cross-lingual star: supporting chunk median rank | within 10 | supporting doc nearest | sources among its 20 nearest | same-language star: supporting doc nearest | median rank | sources among its 20 nearest | fit s |`,
);
console.log(
  `| --- | ---: | ---: | ---: | ${rows[0]!.rankMap.map(() => '---: | ---:').join(' | ')} | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
);
for (const r of rows) {
  const x = star(r, 'cross-lingual');
  const y = star(r, 'same language');
  console.log(
    `| ${r.label} | ${fmt(r.space.byLanguage.de.document)} | ${fmt(r.map.byLanguage.de.document)} | ${fmt(r.map.overlapEnglish)} | ${r.rankMap.map((k) => `${k.median} | ${fmt(k.within10)}`).join(' | ')} | ${x.median} | ${fmt(x.within10)} | ${fmt(x.firstFile)} | ${fmt(x.around)} | ${fmt(y.firstFile)} | ${y.median} | ${fmt(y.around)} | ${r.fitS.toFixed(1)} |`,
  );
}
