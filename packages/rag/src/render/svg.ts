import { escapeXml } from '@crp/common';
import type { EmbeddingMap } from '../explain/embedding-map.js';
import type { KeywordOverlap } from '../explain/keyword-overlap.js';
import type { SentenceHeatmap } from '../explain/sentence-heatmap.js';

const fmt = (n: number) => (Math.round(n * 10) / 10).toString();

/** White-to-orange colour of a score in [0, 1]. */
export function heatColor(score: number): string {
  const s = Math.max(0, Math.min(1, score));
  const r = 255;
  const g = Math.round(255 - s * (255 - 140));
  const b = Math.round(255 - s * 255);
  return `rgb(${r},${g},${b})`;
}

/**
 * The embedding map as SVG: grey chunks, orange nearest non-retrieved ones, red numbered sources and a
 * blue star for the question. Hovering a point shows its file and similarity.
 */
export function renderEmbeddingMapSvg(
  map: EmbeddingMap,
  options: { width?: number; height?: number } = {},
): string {
  const w = options.width ?? 640;
  const h = options.height ?? 440;
  const pad = 24;
  const xs = [...map.points.map((p) => p.x), map.query.x];
  const ys = [...map.points.map((p) => p.y), map.query.y];
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (x: number) => pad + ((x - x0) / (x1 - x0 || 1)) * (w - 2 * pad);
  const sy = (y: number) => h - 40 - ((y - y0) / (y1 - y0 || 1)) * (h - 40 - pad);
  const order = { other: 0, neighbor: 1, retrieved: 2 } as const;
  const pts = [...map.points].sort((a, b) => order[a.kind] - order[b.kind]);
  const style = {
    other: 'fill="#bdbdbd" fill-opacity="0.55" r="2.5"',
    neighbor: 'fill="#f28e2b" r="5"',
    retrieved: 'fill="#d62728" r="6.5" stroke="#fff" stroke-width="1"',
  } as const;
  const circles = pts
    .map((p) => {
      const title = `${p.file}${p.page !== undefined ? `, p. ${p.page}` : ''} (similarity ${p.similarity.toFixed(2)})`;
      return `<circle class="pt ${p.kind}" cx="${fmt(sx(p.x))}" cy="${fmt(sy(p.y))}" ${style[p.kind]}><title>${escapeXml(title)}</title></circle>`;
    })
    .join('');
  const qx = sx(map.query.x);
  const qy = sy(map.query.y);
  const numbered = pts
    .filter((p) => p.source !== undefined)
    .map((p) => ({ x: sx(p.x), y: sy(p.y), source: p.source! }));
  // labels stay above the legend row (it starts 24 px above the bottom edge) and off the orange points; a second
  // set at nearly twice the size is shown instead when the page is narrow (the map is then drawn at about 0.6 of
  // its size, and 11 px numbers became 6.5 px)
  const near = pts.filter((p) => p.kind === 'neighbor').map((p) => ({ x: sx(p.x), y: sy(p.y) }));
  const labelSet = (fontSize: number) =>
    placeSourceLabels(numbered, { x: qx, y: qy }, w, h - 26, near, fontSize)
      .map(
        (l) =>
          `<text class="source-label" x="${fmt(l.x)}" y="${fmt(l.y + (9 * fontSize) / 11)}" font-size="${fontSize}" fill="#8b0000">${escapeXml(l.text)}</text>` +
          (l.leader
            ? `<line x1="${fmt(l.leader.x)}" y1="${fmt(l.leader.y)}" x2="${fmt(l.x)}" y2="${fmt(l.y + (5 * fontSize) / 11)}" stroke="#8b0000" stroke-width="${fmt((0.6 * fontSize) / 11)}"/>`
            : ''),
      )
      .join('');
  const labels =
    '<style>.embedding-map .labels-large{display:none}@media (max-width:600px){.embedding-map .labels-small{display:none}.embedding-map .labels-large{display:inline}}</style>' +
    `<g class="labels-small">${labelSet(11)}</g><g class="labels-large">${labelSet(20)}</g>`;
  const star = Array.from({ length: 10 }, (_, i) => {
    const r = i % 2 ? 4 : 10;
    const a = (Math.PI / 5) * i - Math.PI / 2;
    return `${fmt(qx + r * Math.cos(a))},${fmt(qy + r * Math.sin(a))}`;
  }).join(' ');
  // the legend as the labels: 12 px text, and below 600 px (the map drawn at about 0.6 of its size, where 12 px
  // became 7 px) a set at 19 px (11.4 px shown) with shorter words from the left edge, so that one row fits the map
  const legend =
    '<style>.embedding-map .legend-large{display:none}@media (max-width:600px){.embedding-map .legend-small{display:none}.embedding-map .legend-large{display:inline}}</style>' +
    legendRow('legend-small', pad, h - 14, 12, [
      'retrieved (source n)',
      'nearest not retrieved',
      'other chunks',
      'question',
    ]) +
    legendRow('legend-large', 8, h - 6, 19, ['source n', 'nearest not retrieved', 'other', 'question']);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="embedding-map" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="Embedding map (UMAP, seed ${map.seed})">` +
    `<rect width="${w}" height="${h}" fill="#fff"/>${circles}` +
    `<polygon class="query" points="${star}" fill="#1f77b4" stroke="#fff" stroke-width="1"><title>question</title></polygon>${labels}${legend}</svg>`
  );
}

/**
 * One row of the map's legend (retrieved, nearest not retrieved, other chunks, question), each symbol before its
 * words; `y` is the text's baseline. Words are spaced by an estimate of their width (0.56 of the size a character,
 * a little more than system-ui's average), so a row never overlaps itself.
 */
function legendRow(
  cls: string,
  x0: number,
  y: number,
  fontSize: number,
  words: readonly [string, string, string, string],
): string {
  const k = fontSize / 12;
  // the circles' centre: a third of the size above the baseline (the star a little lower, it reaches further up)
  const mid = -fontSize / 3;
  const symbols = [
    (x: number) => `<circle cx="${fmt(x + 4 * k)}" cy="${fmt(mid)}" r="${fmt(4 * k)}" fill="#d62728"/>`,
    (x: number) => `<circle cx="${fmt(x + 4 * k)}" cy="${fmt(mid)}" r="${fmt(4 * k)}" fill="#f28e2b"/>`,
    (x: number) => `<circle cx="${fmt(x + 4 * k)}" cy="${fmt(mid)}" r="${fmt(3 * k)}" fill="#bdbdbd"/>`,
    (x: number) => {
      const s = Math.min(k, 1.1);
      const star = Array.from({ length: 10 }, (_, i) => {
        const r = (i % 2 ? 4 : 10) * s;
        const a = (Math.PI / 5) * i - Math.PI / 2;
        return `${fmt(x + 10 * s + r * Math.cos(a))},${fmt(mid + 4 / k + r * Math.sin(a))}`;
      }).join(' ');
      return `<polygon points="${star}" fill="#1f77b4"/>`;
    },
  ];
  let x = 0;
  const parts = words.map((word, i) => {
    const symbolWidth = i === 3 ? 20 * Math.min(k, 1.1) : 8 * k;
    const part = `${symbols[i]!(x)}<text x="${fmt(x + symbolWidth + 4 * k)}" y="0">${escapeXml(word)}</text>`;
    x += symbolWidth + 4 * k + 0.56 * fontSize * word.length + 14 * k;
    return part;
  });
  return `<g class="${cls}" font-size="${fontSize}" transform="translate(${x0},${y})">${parts.join('')}</g>`;
}

/** A source-number label on the map: top-left corner of its text box, and a leader line when moved away. */
export interface MapLabel {
  readonly text: string;
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly leader?: { readonly x: number; readonly y: number };
}

/**
 * Lays out the source numbers of the map so they stay readable: sources at (nearly) the same spot share one
 * label ("1, 3"); each label takes the first place around its point where it overlaps no other label, no
 * source point, no point in `avoid` (the nearest chunks not retrieved) and not the question's star, further out
 * (with a leader line) when the near places are taken. `fontSize` (default 11) sizes the label boxes.
 */
export function placeSourceLabels(
  points: readonly { x: number; y: number; source: number }[],
  star: { x: number; y: number },
  width: number,
  height: number,
  avoid: readonly { x: number; y: number }[] = [],
  fontSize = 11,
): MapLabel[] {
  const scale = fontSize / 11;
  const groups: { x: number; y: number; sources: number[] }[] = [];
  for (const p of [...points].sort((a, b) => a.source - b.source)) {
    const g = groups.find((q) => Math.hypot(q.x - p.x, q.y - p.y) < 8);
    if (g) g.sources.push(p.source);
    else groups.push({ x: p.x, y: p.y, sources: [p.source] });
  }
  type Box = { x: number; y: number; width: number; height: number };
  const taken: Box[] = [
    ...[...points, ...avoid].map((p) => ({ x: p.x - 7, y: p.y - 7, width: 14, height: 14 })),
    { x: star.x - 10, y: star.y - 10, width: 20, height: 20 },
  ];
  const hits = (a: Box, b: Box) =>
    a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
  const out: MapLabel[] = [];
  for (const g of groups) {
    const text = g.sources.join(', ');
    const bw = (6.5 * text.length + 2) * scale;
    const bh = fontSize;
    let placed: MapLabel | undefined;
    for (let ring = 0; ring < 6 && !placed; ring++) {
      const d = (9 + ring * 12) * scale;
      const offsets = [
        [d, -bh / 2],
        [-d - bw, -bh / 2],
        [-bw / 2, -d - bh],
        [-bw / 2, d],
        [d, -d - bh / 2],
        [-d - bw, -d - bh / 2],
        [d, d - bh / 2],
        [-d - bw, d - bh / 2],
      ];
      for (const [dx, dy] of offsets) {
        const box = { x: g.x + dx!, y: g.y + dy!, width: bw, height: bh };
        if (box.x < 0 || box.y < 0 || box.x + bw > width || box.y + bh > height) continue;
        if (taken.some((t) => hits(t, box))) continue;
        placed = { text, ...box, ...(ring > 0 ? { leader: { x: g.x, y: g.y } } : {}) };
        break;
      }
    }
    placed ??= { text, x: Math.min(g.x + 9 * scale, width - bw), y: g.y - bh / 2, width: bw, height: bh };
    taken.push(placed);
    out.push(placed);
  }
  return out;
}

function wrap(text: string, width: number): string[] {
  const words = text.replace(/\s+/g, ' ').trim().split(' ');
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines;
}

/** Code keeps its lines and indentation (SVG collapses spaces unless told not to). */
const CODE_TEXT = ' font-family="monospace" xml:space="preserve" style="white-space:pre"';
const NOTE_TEXT = ' font-style="italic" fill="#555"';

/** A code block's lines as written, a line longer than `width` characters cut into pieces of that length. */
function codeLines(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const line of text.replace(/\s+$/, '').split(/\r?\n/)) {
    if (line.length === 0) lines.push('');
    for (let i = 0; i < line.length; i += width) lines.push(line.slice(i, i + width));
  }
  return lines;
}

/** A sentence heatmap as SVG: each sentence on a background whose colour shows its score. */
export function renderSentenceHeatmapSvg(heatmap: SentenceHeatmap, options: { width?: number } = {}): string {
  const w = options.width ?? 640;
  const chars = Math.floor((w - 70) / 6.6);
  const lineH = 16;
  let y = 24;
  const rows: string[] = [
    `<text x="8" y="16" font-size="12" font-weight="bold">${heatmap.source}. ${escapeXml(heatmap.citation)}</text>`,
  ];
  for (const s of heatmap.sentences) {
    const code = s.kind === 'code';
    // a footnote shown as one: it is quoted apart from the text, and a reader tells it from the text
    const lines = code
      ? codeLines(s.text, chars)
      : wrap(s.kind === 'note' ? `Footnote: ${s.text}` : s.text, chars);
    const hgt = lines.length * lineH + 4;
    rows.push(
      `<g class="sentence"><rect x="4" y="${y}" width="${w - 8}" height="${hgt}" rx="3" fill="${heatColor(s.score)}"><title>score ${s.score.toFixed(2)} (embedding ${s.dense.toFixed(2)}, terms ${s.lexical.toFixed(2)})</title></rect>` +
        `<text x="${w - 44}" y="${y + 13}" font-size="10" fill="#555">${s.score.toFixed(2)}</text>` +
        lines
          .map(
            (l, i) =>
              `<text x="10" y="${y + 13 + i * lineH}" font-size="11"${code ? CODE_TEXT : s.kind === 'note' ? NOTE_TEXT : ''}>${escapeXml(l)}</text>`,
          )
          .join('') +
        '</g>',
    );
    y += hgt + 3;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" class="sentence-heatmap" width="${w}" height="${y + 4}" viewBox="0 0 ${w} ${y + 4}" font-family="sans-serif"><rect width="${w}" height="${y + 4}" fill="#fff"/>${rows.join('')}</svg>`;
}

/**
 * Keyword chips as SVG: shared terms sized and shaded by weight, missing question words struck through; rows wrap
 * at `width` (default 640), and the picture is as wide as its widest row.
 */
export function renderKeywordChipsSvg(overlap: KeywordOverlap, options: { width?: number } = {}): string {
  const w = options.width ?? 640;
  const max = Math.max(...overlap.shared.map((k) => k.weight), 1e-9);
  let x = 8;
  let y = 8;
  let right = 0;
  const chips: string[] = [];
  const place = (label: string, fill: string, color: string, title: string, deco = '') => {
    const cw = label.length * 7 + 16;
    if (x + cw > w - 8) {
      x = 8;
      y += 28;
    }
    chips.push(
      `<g class="chip"><rect x="${x}" y="${y}" width="${cw}" height="22" rx="11" fill="${fill}"><title>${escapeXml(title)}</title></rect>` +
        `<text x="${x + 8}" y="${y + 15}" font-size="12" fill="${color}"${deco}>${escapeXml(label)}</text></g>`,
    );
    right = Math.max(right, x + cw);
    x += cw + 6;
  };
  for (const k of overlap.shared) {
    const s = k.weight / max;
    place(
      `${k.translated ? '⇄ ' : ''}${k.word} ${k.weight.toFixed(2)}`,
      heatColor(0.25 + 0.75 * s),
      '#222',
      `${k.translated ? 'found through its translation: ' : ''}terms ${k.stems.join(', ')}; idf ${k.idf.toFixed(2)}; ${k.count}x in chunk`,
    );
  }
  for (const m of overlap.missing)
    place(m, '#eeeeee', '#888', 'not in this chunk', ' text-decoration="line-through"');
  const h = y + 30;
  // as wide as its chips: a page that fits the picture to a narrow screen shrinks its text only when it must
  const used = Math.min(w, right + 8);
  return `<svg xmlns="http://www.w3.org/2000/svg" class="keyword-chips" width="${used}" height="${h}" viewBox="0 0 ${used} ${h}" font-family="sans-serif">${chips.join('')}</svg>`;
}
