/**
 * `pnpm --filter @crp/rag exec tsx scripts/map-eval.ts [--index DIR] [--corpus DIR] [--dims N] [--neighbors N]`
 *
 * Does the embedding map group by meaning or by language? Fits the map (seeded UMAP) of an index once on the
 * embedding vectors (`space: 'embedding'`, the map before issue 24) and once in the language-neutral
 * {@link MeaningSpace} (`space: 'meaning'`), and reports for each:
 * - for the cross-lingual questions of the QA files: the **star's rank** of its supporting chunk, i.e. how
 *   many map points lie nearer to the projected question than the nearest chunk holding the supporting
 *   passage (1 = it is the nearest point), as median and share within the nearest 10 / 50;
 * - the **language mixing** of the map: the share of a German chunk's 10 nearest map neighbours that are
 *   English chunks (0 when the languages form two islands).
 * - for each German document, the English document nearest to most of its chunks on the map.
 * A third row, `gloss`, is the alternative that was tried and not taken: German chunks embedded through their
 * dictionary gloss with the (English) embedding, English ones as indexed.
 * The index is the one `pnpm rag:eval` builds (default: its cache folder); it is only read.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  chunkContextText,
  dot,
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
    dims: { type: 'string', default: '1024' },
    neighbors: { type: 'string', default: '15' },
    corpus: { type: 'string', default: path.join(repoRoot, 'vendor/rag-corpus') },
  },
});
const index = await RagIndex.open({ dir: path.resolve(values.index!), embedding: new UseLiteEmbedding() });
const chunks = index.chunks;
console.log(`${chunks.length} chunks (${chunks.filter((c) => c.metadata.language === 'de').length} German)`);

interface Question {
  question: string;
  cross_lingual?: boolean;
  supporting_passage: { file: string; text: string };
}
const questions: Question[] = [];
for (const f of ['qa.json', 'qa-extra.json', 'qa-natural.json', 'qa-heldout-2.json']) {
  const file = path.join(values.corpus!, f);
  if (!existsSync(file)) continue;
  const qa = JSON.parse(await readFile(file, 'utf8')) as { questions: Question[] };
  questions.push(...qa.questions.filter((q) => q.cross_lingual));
}

const space = new MeaningSpace(
  chunks.map((_, i) => index.termsAt(i)),
  index.translator,
  { dimensions: Number(values.dims) },
);
const fileOf = new Map(chunks.map((c) => [c.id, c.metadata.file]));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
// experiment: German chunks embedded through their gloss (English stems), English ones as indexed
const glossVectors = [...index.vectors];
const de = chunks.map((c, i) => ({ c, i })).filter(({ c }) => c.metadata.language === 'de');
const deVecs = await index.embedding.embed(
  de.map(({ c }) => glossOnly(chunkContextText(c), 'de', index.translator!)),
);
de.forEach(({ i }, j) => {
  glossVectors[i] = deVecs[j]!;
});
for (const which of ['embedding', 'meaning', 'gloss'] as const) {
  const vectors = which === 'meaning' ? space.vectors : which === 'gloss' ? glossVectors : index.vectors;
  const t = performance.now();
  const map = FittedMap.fit(vectors, {
    space: which === 'gloss' ? 'embedding' : which,
    nNeighbors: Number(values.neighbors),
  });
  const fitMs = performance.now() - t;
  const ranks: number[] = [];
  const spaceRanks: number[] = [];
  const fileRanks: number[] = [];
  const spaceFileRanks: number[] = [];
  for (const q of questions) {
    const file = q.supporting_passage.file.replace(/^docs\//, '');
    const supporting = new Set(
      chunks
        .map((c, i) => ({ c, i }))
        .filter(({ c }) => c.metadata.file === file && passageInTexts(q.supporting_passage.text, [c.text]))
        .map(({ c }) => c.id),
    );
    if (supporting.size === 0) continue;
    const qv =
      which === 'meaning'
        ? space.embedQuery(index.analyzeQuestion(q.question))
        : which === 'gloss' && index.analyzeQuestion(q.question).language === 'de'
          ? (await index.embedding.embed([glossOnly(q.question, 'de', index.translator!)]))[0]!
          : await index.embedQuery(q.question);
    const sims = vectors.map((v, i) => ({ id: chunks[i]!.id, s: dot(v, qv) })).sort((a, b) => b.s - a.s);
    spaceRanks.push(sims.findIndex((p) => supporting.has(p.id)) + 1);
    spaceFileRanks.push([...new Set(sims.map((p) => fileOf.get(p.id)!))].indexOf(file) + 1);
    const m = map.project(chunks, vectors, qv, []);
    const d = m.points.map((p) => ({ id: p.chunkId, d: Math.hypot(p.x - m.query.x, p.y - m.query.y) }));
    d.sort((a, b) => a.d - b.d);
    ranks.push(d.findIndex((p) => supporting.has(p.id)) + 1);
    // documents in the order of their nearest point to the star
    const files = [...new Set(d.map((p) => fileOf.get(p.id)!))];
    fileRanks.push(files.indexOf(file) + 1);
  }
  // language mixing: German chunks' nearest map neighbours
  const m = map.project(chunks, vectors, vectors[0]!, []);
  const lang = new Map(chunks.map((c) => [c.id, c.metadata.language]));
  let shares = 0;
  let german = 0;
  for (const p of m.points) {
    if (lang.get(p.chunkId) !== 'de') continue;
    const near = m.points
      .filter((o) => o !== p)
      .map((o) => ({ o, d: Math.hypot(o.x - p.x, o.y - p.y) }))
      .sort((a, b) => a.d - b.d)
      .slice(0, 10);
    shares += near.filter((n) => lang.get(n.o.chunkId) === 'en').length / near.length;
    german++;
  }
  // for each German document: the English document nearest to most of its chunks on the map
  const nearestEnglish = new Map<string, Map<string, number>>();
  const english = m.points.filter((o) => lang.get(o.chunkId) === 'en');
  for (const p of m.points) {
    if (lang.get(p.chunkId) !== 'de') continue;
    let best = english[0]!;
    for (const o of english)
      if (Math.hypot(o.x - p.x, o.y - p.y) < Math.hypot(best.x - p.x, best.y - p.y)) best = o;
    const tally = nearestEnglish.get(p.file) ?? new Map<string, number>();
    tally.set(best.file, (tally.get(best.file) ?? 0) + 1);
    nearestEnglish.set(p.file, tally);
  }
  for (const [file, tally] of nearestEnglish) {
    const top = [...tally].sort((a, b) => b[1] - a[1]).slice(0, 2);
    const n = [...tally.values()].reduce((a, b) => a + b, 0);
    console.log(
      `  ${which} ${file}: nearest English ${top.map(([f, k]) => `${f} ${((100 * k) / n).toFixed(0)}%`).join(', ')}`,
    );
  }
  console.log(
    `${which.padEnd(9)}: ${ranks.length} cross-lingual questions; the supporting document is the star's nearest: ${(fileRanks.filter((r) => r === 1).length / fileRanks.length).toFixed(3)}, among its 3 nearest: ${(fileRanks.filter((r) => r <= 3).length / fileRanks.length).toFixed(3)} (median rank ${median(fileRanks)} of ${new Set(fileOf.values()).size}); star's rank of its supporting chunk: median ${median(ranks)}, ` +
      `within 10: ${(ranks.filter((r) => r <= 10).length / ranks.length).toFixed(3)}, within 50: ${(ranks.filter((r) => r <= 50).length / ranks.length).toFixed(3)}; ` +
      `English share of a German chunk's 10 map neighbours: ${(shares / german).toFixed(3)}; ` +
      `by cosine before the map: supporting document first ${(spaceFileRanks.filter((r) => r === 1).length / spaceFileRanks.length).toFixed(3)}, chunk rank median ${median(spaceRanks)}, within 10: ${(spaceRanks.filter((r) => r <= 10).length / spaceRanks.length).toFixed(3)} (fit ${(fitMs / 1000).toFixed(1)} s, ${m.points.length} points)`,
  );
}
