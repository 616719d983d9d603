import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrpError } from '@crp/common';
import { describe, expect, it } from 'vitest';
import {
  conceptRelevanceChart,
  decodePng,
  pruningCurveChart,
  RELEVANCE_COLORS,
  renderSvg,
  scatterChart,
} from '../src/index.js';
import { renderPng, svgToPng, writePlot } from '../src/node.js';

const entries = [
  { layer: 'features.20', concept: 3, relevance: 0.2 },
  { layer: 'features.20', concept: 9, relevance: -0.35 },
  { layer: 'features.20', concept: 4, relevance: 0.01 },
  { layer: 'features.28', concept: 12, relevance: 0.31 },
  { layer: 'features.28', concept: 7, relevance: 0.12, label: 'fur' },
];

function values(spec: object): Record<string, unknown>[] {
  return (spec as { data: { values: Record<string, unknown>[] } }).data.values;
}

async function codeOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof CrpError) return err.code;
    throw err;
  }
  throw new Error('expected a CrpError');
}

describe('chart specs', () => {
  it('concept relevance keeps the top concepts per layer by |relevance|, in layer order', () => {
    const rows = values(conceptRelevanceChart(entries, { top: 2 }));
    expect(rows.map((r) => [r.layer, r.concept, r.sign, r.rank])).toEqual([
      ['features.20', '#9', 'negative', 0],
      ['features.20', '#3', 'positive', 1],
      ['features.28', '#12', 'positive', 0],
      ['features.28', 'fur', 'positive', 1],
    ]);
  });

  it('pruning curves and scatter carry their data', () => {
    const spec = pruningCurveChart([{ criterion: 'relevance', points: [{ fraction: 0, accuracy: 0.9 }] }], {
      baseline: 0.9,
    });
    expect(values(spec)).toEqual([{ criterion: 'relevance', fraction: 0, accuracy: 0.9 }]);
    const yAxis = (s: object) =>
      JSON.stringify(s).match(/"title":"Similarity","axis":\{"format":"([^"]+)"\}/)?.[1];
    const points = [{ criterion: 'lrp', points: [{ fraction: 0, accuracy: -0.2 }] }];
    expect(yAxis(pruningCurveChart(points, { yTitle: 'Similarity' }))).toBe('.0%');
    expect(yAxis(pruningCurveChart(points, { yTitle: 'Similarity', yFormat: '.1f' }))).toBe('.1f');
    expect(values(scatterChart([{ x: 1, y: 2, group: 'a' }]))).toEqual([
      { x: 1, y: 2, group: 'a', label: '' },
    ]);
  });

  it('rejects empty data, non-finite numbers and fractions outside [0, 1]', async () => {
    expect(await codeOf(() => conceptRelevanceChart([]))).toBe('invalid-argument');
    expect(
      await codeOf(() => conceptRelevanceChart([{ layer: 'a', concept: 1, relevance: Number.NaN }])),
    ).toBe('invalid-value');
    expect(
      await codeOf(() => pruningCurveChart([{ criterion: 'r', points: [{ fraction: 1.5, accuracy: 0.5 }] }])),
    ).toBe('invalid-argument');
    expect(await codeOf(() => scatterChart([{ x: Number.POSITIVE_INFINITY, y: 0 }]))).toBe('invalid-value');
  });
});

describe('rendering in Node', () => {
  it('renders SVG with text and no canvas package installed', async () => {
    await expect(import('canvas' as string)).rejects.toThrow();
    const svg = await renderSvg(conceptRelevanceChart(entries, { title: 'Concept relevance' }));
    expect(svg.startsWith('<svg')).toBe(true);
    for (const text of ['Concept relevance', 'features.20', 'features.28', '#12', 'fur', 'Relevance']) {
      expect(svg).toContain(`>${text}</text>`);
    }
    expect(svg.toLowerCase()).toContain(RELEVANCE_COLORS.positive);
    expect(svg.toLowerCase()).toContain(RELEVANCE_COLORS.negative);
  });

  it('renders full vega specs too', async () => {
    const svg = await renderSvg({
      width: 40,
      height: 20,
      marks: [
        {
          type: 'text',
          encode: { enter: { text: { value: 'hello vega' }, x: { value: 5 }, y: { value: 10 } } },
        },
      ],
    });
    expect(svg).toContain('>hello vega</text>');
    expect(await codeOf(() => renderSvg({ marks: [{ type: 'nonsense' }] }))).toBe('render-failed');
  });

  it('shows a long criterion name whole in the legend (composite names run past the 160 px vega allows by default)', async () => {
    const name = 'epsilon_gamma_box_alpha2_beta1_flat (ResNet canonizer)';
    const svg = await renderSvg(
      pruningCurveChart([{ criterion: name, points: [0, 1].map((f) => ({ fraction: f, accuracy: 1 - f })) }]),
    );
    expect(svg).toContain(name);
    expect(svg).not.toContain('…');
  });

  it('rasterises to PNG at the requested scale with the bar colours', async () => {
    const spec = pruningCurveChart(
      [
        {
          criterion: 'relevance',
          points: [0, 0.5, 1].map((f) => ({ fraction: f, accuracy: 0.9 - 0.8 * f * f })),
        },
        { criterion: 'random', points: [0, 0.5, 1].map((f) => ({ fraction: f, accuracy: 0.9 - 0.8 * f })) },
      ],
      { width: 200, height: 120 },
    );
    const svg = await renderSvg(spec);
    const svgWidth = Number(/width="(\d+)"/.exec(svg)![1]);
    const png = decodePng(await renderPng(spec, { scale: 2 }));
    expect(png.width).toBe(svgWidth * 2);
    const bar = decodePng(await renderPng(conceptRelevanceChart(entries), { scale: 1 }));
    let red = 0;
    for (let p = 0; p < bar.width * bar.height; p++) {
      const c = bar.channels;
      if (bar.data[p * c] === 0xd7 && bar.data[p * c + 1] === 0x30 && bar.data[p * c + 2] === 0x1f) red++;
    }
    expect(red).toBeGreaterThan(500);
    expect(await codeOf(() => svgToPng(svg, { scale: 0 }))).toBe('invalid-argument');
  });

  it('writes .svg and .png atomically, refuses other extensions', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'crp-vis-plot-'));
    try {
      const spec = scatterChart([{ x: 0, y: 0, label: 'origin' }]);
      await writePlot(join(dir, 'a.svg'), spec);
      await writePlot(join(dir, 'a.png'), spec);
      expect(await readFile(join(dir, 'a.svg'), 'utf8')).toContain('>origin</text>');
      expect(decodePng(await readFile(join(dir, 'a.png'))).width).toBeGreaterThan(100);
      expect(await codeOf(() => writePlot(join(dir, 'a.pdf'), spec))).toBe('unsupported-format');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
