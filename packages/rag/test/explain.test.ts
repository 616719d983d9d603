import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FittedMap, HashEmbedding, RagEngine, renderEmbeddingMapSvg } from '../src/node.js';
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
  });
});
