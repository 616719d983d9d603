/**
 * Renders every built-in colour map and one example of each view into packages/vis/out/, plus an index.html
 * report that shows them all with captions. Run: `pnpm --filter @crp/vis gallery`.
 */

import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  builtinColorMapNames,
  conceptRelevanceChart,
  conceptTable,
  cropBox,
  imageGrid,
  imgify,
  opacityView,
  overlayHeatmap,
  palette,
  pruningCurveChart,
  type RasterImage,
  type ReportFigure,
  relevanceBox,
  renderSvg,
  resize,
  scatterChart,
} from '../src/index.js';
import { writeImage, writePlot, writeReport } from '../src/node.js';
import { seededRandom, syntheticHeatmap, syntheticScene } from './fixtures.js';

const out = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'out');

function paletteStrip(cmap: string, level = 1, width = 256, height = 28): RasterImage {
  const pal = palette(cmap, level);
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const k = Math.floor((x * 256) / width) * 3;
      data.set(pal.subarray(k, k + 3), (y * width + x) * 3);
    }
  }
  return { width, height, channels: 3, data };
}

async function main(): Promise<void> {
  await mkdir(out, { recursive: true });
  const written: string[] = [];
  const save = async (name: string, image: RasterImage) => {
    await writeImage(join(out, name), image);
    written.push(name);
  };

  // colour maps
  const strips: ReportFigure[] = [];
  for (const name of builtinColorMapNames()) {
    const strip = paletteStrip(name);
    await save(`cmap-${name}.png`, strip);
    strips.push({ image: strip, caption: name });
  }
  for (const level of [0.5, 2]) {
    const strip = paletteStrip('bwr', level);
    await save(`cmap-bwr-level${level}.png`, strip);
    strips.push({ image: strip, caption: `bwr, level ${level}` });
  }

  // views
  const size = 160;
  const scene = syntheticScene(size);
  const heat = syntheticHeatmap(size);
  const heatShape = { data: heat, shape: [size, size] };
  const views: ReportFigure[] = [];
  const view = async (name: string, image: RasterImage, caption: string) => {
    await save(name, image);
    views.push({ image, caption });
  };
  await view('input.png', scene, 'input image');
  await view(
    'heatmap-bwr.png',
    imgify(heatShape, { cmap: 'bwr', symmetric: true }),
    'imgify: bwr, symmetric',
  );
  await view(
    'heatmap-coldnhot.png',
    imgify(heatShape, { cmap: 'coldnhot', symmetric: true }),
    'imgify: coldnhot',
  );
  await view(
    'heatmap-hot-level2.png',
    imgify(heatShape, { cmap: 'hot', level: 2 }),
    'imgify: hot, level 2 (min-max)',
  );
  await view('overlay.png', overlayHeatmap(scene, heatShape, { alpha: 0.6 }), 'overlay, alpha 0.6');
  await view(
    'overlay-weighted.png',
    overlayHeatmap(scene, heatShape, { alpha: 0.9, weighted: true, grayscale: true }),
    'overlay, weighted, grey image',
  );
  await view('opacity.png', opacityView(scene, heatShape, { gamma: 0.7, minOpacity: 0.08 }), 'opacity view');
  await view(
    'opacity-threshold.png',
    opacityView(scene, heatShape, { blur: 3, threshold: 0.2, minOpacity: 0.3, background: '#111827' }),
    'opacity, blurred hard mask (zennit-crp style)',
  );
  const box = relevanceBox(heatShape, 0.25)!;
  await view(
    'crop-relevance.png',
    resize(cropBox(scene, box), { width: size }),
    `relevance crop ${box.width}x${box.height}`,
  );
  await view(
    'crop-border.png',
    resize(
      cropBox(scene, { x: 100, y: -30, width: 90, height: 90 }, { mode: 'constant', fill: [235, 236, 240] }),
      {
        width: size,
      },
    ),
    'receptive field at the border, padded',
  );

  // a batch of heatmaps through imgify's grid (7 images, 3x3 grid, empty cells filled)
  const rnd = seededRandom(7);
  const n = 7;
  const small = 24;
  const batch = new Float32Array(n * small * small);
  for (let i = 0; i < n; i++) {
    const blobs = Array.from(
      { length: 3 },
      () => [rnd() * 128, rnd() * 128, 12 + rnd() * 18, rnd() * 2 - 0.7] as const,
    );
    batch.set(syntheticHeatmap(small, blobs), i * small * small);
  }
  const batchGrid = imgify(
    { data: batch, shape: [n, small, small] },
    { symmetric: true, grid: [3, 3], gridfill: 127 },
  );
  await view('imgify-grid.png', resize(batchGrid, { width: size }), 'imgify grid: 7 heatmaps, 3x3');

  await save(
    'grid.png',
    imageGrid(
      views.slice(0, 8).map((v) => v.image),
      { columns: 4, spacing: 6, padding: 6 },
    ),
  );

  // plots
  const layers = ['features.10', 'features.20', 'features.28'];
  const concepts = layers.flatMap((layer, l) =>
    Array.from({ length: 16 }, (_, c) => ({
      layer,
      concept: c * (l + 3),
      relevance: (rnd() - 0.35) * (1 - c / 20) * (l + 1) * 0.1,
    })),
  );
  const barSpec = conceptRelevanceChart(concepts, { title: 'Concept relevance per layer', top: 8 });
  const curves = ['relevance', 'activation', 'random'].map((criterion, k) => ({
    criterion,
    points: Array.from({ length: 11 }, (_, i) => {
      const f = i / 10;
      const drop = k === 0 ? f ** 3 : k === 1 ? f ** 1.8 : f;
      return { fraction: f, accuracy: 0.1 + 0.78 * (1 - drop) + (i === 0 ? 0 : (rnd() - 0.5) * 0.02) };
    }),
  }));
  const pruneSpec = pruningCurveChart(curves, {
    title: 'Pruning curves',
    subtitle: 'Accuracy while the least important concepts are removed',
    baseline: 0.88,
    chance: 0.1,
  });
  const points = Array.from({ length: 60 }, (_, i) => {
    const g = i % 3;
    return {
      x: [0, 4, 1.5][g]! + (rnd() - 0.5) * 2.2,
      y: [0, 1, 3.5][g]! + (rnd() - 0.5) * 2.2,
      group: ['dogs', 'cats', 'birds'][g]!,
      ...(i < 6 ? { label: `#${i * 7}` } : {}),
    };
  });
  const scatterSpec = scatterChart(points, {
    title: 'Concept embedding',
    xTitle: 't-SNE 1',
    yTitle: 't-SNE 2',
  });
  for (const [name, spec] of [
    ['plot-concepts', barSpec],
    ['plot-pruning', pruneSpec],
    ['plot-scatter', scatterSpec],
  ] as const) {
    await writePlot(join(out, `${name}.svg`), spec);
    await writePlot(join(out, `${name}.png`), spec);
    written.push(`${name}.svg`, `${name}.png`);
  }

  await writeReport(join(out, 'index.html'), {
    title: '@crp/vis gallery',
    subtitle: 'Every built-in colour map and one example of each view, from synthetic data.',
    meta: { images: `${size}x${size}`, 'colour maps': builtinColorMapNames().length },
    sections: [
      {
        kind: 'text',
        title: 'About',
        markdown:
          'The scene and its relevance are synthetic: **positive** relevance on the house and the sun, ' +
          '*negative* relevance on the hills. Colour maps follow `zennit.image` byte for byte.',
      },
      { kind: 'images', title: 'Colour maps', items: strips, minWidth: 200, pixelated: false },
      { kind: 'images', title: 'Views', items: views, minWidth: 150 },
      conceptTable(
        concepts
          .filter((c) => c.layer === 'features.28')
          .slice(0, 5)
          .map((c, k) => ({
            concept: c.concept,
            layer: c.layer,
            relevance: c.relevance,
            images: [views[6 + (k % 2)]!.image, views[4]!.image],
          })),
        { title: 'Concepts', digits: 3 },
      ),
      { kind: 'plot', title: 'Concept relevance', plot: { svg: await renderSvg(barSpec) } },
      { kind: 'plot', title: 'Pruning', plot: pruneSpec },
      { kind: 'plot', title: 'Embedding', plot: scatterSpec, caption: 'Three synthetic clusters' },
    ],
  });
  written.push('index.html');
  console.log(`wrote ${written.length} files to ${out}:\n  ${written.join('\n  ')}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
