import { CrpError, escapeHtml } from '@crp/common';
import { pngDataUri } from '../codecs/png.js';
import { type PlotSpec, renderSvg, svgDataUri } from '../plots/render.js';
import { assertRasterImage, isRasterImage, type RasterImage } from '../raster/raster.js';
import { markdownToHtml } from './markdown.js';

/** An image with an optional caption, for {@link ImagesSection}. */
export interface ReportFigure {
  /** The picture. */
  readonly image: RasterImage;
  /** Short text under it. */
  readonly caption?: string;
  /** Alternative text; default the caption. */
  readonly alt?: string;
}

/** A text section: a small, safe Markdown subset (see {@link markdownToHtml}). */
export interface TextSection {
  /** Discriminator: `'text'`. */
  readonly kind: 'text';
  /** Heading of the section (also listed in the table of contents). */
  readonly title?: string;
  /** The text. */
  readonly markdown: string;
}

/** A responsive grid of images (heatmaps, overlays, reference images) with captions. */
export interface ImagesSection {
  /** Discriminator: `'images'`. */
  readonly kind: 'images';
  /** Heading of the section (also listed in the table of contents). */
  readonly title?: string;
  /** Markdown shown above the grid. */
  readonly description?: string;
  /** The images in reading order. */
  readonly items: readonly ReportFigure[];
  /** Fixed number of columns on wide screens (2 on phones); default: as many as fit `minWidth`. */
  readonly columns?: number;
  /** Smallest cell width in CSS pixels when `columns` is not given; default 150. */
  readonly minWidth?: number;
  /** Scale images without smoothing; default: true for images narrower than 64 px (tiny heatmaps). */
  readonly pixelated?: boolean;
}

/** A bar drawn in a table cell: `value / max` of the cell's width, red when positive, blue when negative. */
export interface BarCell {
  /** The value. */
  readonly bar: number;
  /** The value of a full bar; default the largest |bar| of the column. */
  readonly max?: number;
  /** Text beside the bar; default the value with 3 significant digits. */
  readonly text?: string;
}

/** A table cell: text, a number, a bar, one image or a strip of thumbnails. */
export type ReportCell =
  | string
  | number
  | null
  | BarCell
  | {
      /** One image (shown 64 px square). */
      readonly image: RasterImage;
      /** Alternative text; default the column title. */
      readonly alt?: string;
    }
  | {
      /** A strip of thumbnails. */
      readonly images: readonly RasterImage[];
      /** Alternative text prefix; default the column title. */
      readonly alt?: string;
    };

/** A table column: its title, or the title with alignment and number formatting. */
export type ReportColumn =
  | string
  | {
      /** Header text. */
      readonly title: string;
      /** Text alignment; default left. */
      readonly align?: 'left' | 'right' | 'center';
      /** Fixed decimals for numbers; default 3 significant digits. */
      readonly digits?: number;
    };

/** A table (e.g. concepts with relevance and reference images; see {@link conceptTable}). */
export interface TableSection {
  /** Discriminator: `'table'`. */
  readonly kind: 'table';
  /** Heading of the section (also listed in the table of contents). */
  readonly title?: string;
  /** Markdown shown above the table. */
  readonly description?: string;
  /** Column headers. */
  readonly columns: readonly ReportColumn[];
  /** Cells, one array per row with one cell per column. */
  readonly rows: readonly (readonly ReportCell[])[];
}

/** A plot: a vega-lite spec (rendered to SVG when the report is built) or a ready SVG string. */
export interface PlotSection {
  /** Discriminator: `'plot'`. */
  readonly kind: 'plot';
  /** Heading of the section (also listed in the table of contents). */
  readonly title?: string;
  /** Markdown shown above the plot. */
  readonly description?: string;
  /** What to draw. */
  readonly plot:
    | PlotSpec
    | {
        /** A ready SVG document. */
        readonly svg: string;
      };
  /** Short text under the plot. */
  readonly caption?: string;
}

/** One part of a report. */
export type ReportSection = TextSection | ImagesSection | TableSection | PlotSection;

/** What a report consists of. */
export interface ReportOptions {
  /** Title of the page and its first heading. */
  readonly title: string;
  /** One sentence under the title. */
  readonly subtitle?: string;
  /** Facts shown as chips under the title (model, layer, date, ...), in order. */
  readonly meta?: Readonly<Record<string, string | number>>;
  /** The body, in order. */
  readonly sections: readonly ReportSection[];
  /** Footer text; default 'Made with @crp/vis'. */
  readonly footer?: string;
}

const CSS = `
:root{--fg:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#f5f6f8;--card:#fff;--pos:#d7301f;--neg:#2166ac;--track:#f1f2f4}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.6 Inter,"Segoe UI",system-ui,-apple-system,"Helvetica Neue",Arial,"DejaVu Sans",sans-serif;-webkit-font-smoothing:antialiased}
.report{max-width:1120px;margin:0 auto;padding:48px 24px 56px}
.report-header h1{font-size:30px;line-height:1.2;letter-spacing:-.02em;margin:0 0 6px;font-weight:700}
.report-header .subtitle{color:var(--muted);margin:0;font-size:16px;max-width:72ch}
.meta{display:flex;flex-wrap:wrap;gap:8px;margin:18px 0 0;padding:0}
.meta div{background:var(--card);border:1px solid var(--line);border-radius:999px;padding:3px 12px;font-size:13px}
.meta dt{display:inline;color:var(--muted)}
.meta dd{display:inline;margin:0 0 0 6px;font-weight:600}
.toc{margin:20px 0 0;display:flex;flex-wrap:wrap;gap:6px 18px;font-size:14px}
.toc a{color:var(--muted);text-decoration:none;border-bottom:1px dotted var(--line)}
.toc a:hover{color:var(--fg)}
.card{background:var(--card);border:1px solid var(--line);border-radius:14px;padding:24px 28px 28px;margin-top:24px;box-shadow:0 1px 2px rgba(16,24,40,.05)}
.card>h2{font-size:19px;line-height:1.3;margin:0 0 10px;letter-spacing:-.01em}
.card>h2,.prose{overflow-wrap:break-word}
.prose{max-width:75ch}
.prose p{margin:0 0 12px}
.prose p:last-child{margin-bottom:0}
.prose h3,.prose h4,.prose h5{margin:18px 0 6px;line-height:1.3}
.prose ul,.prose ol{margin:0 0 12px;padding-left:22px}
.prose a{color:var(--neg)}
code{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;background:var(--track);padding:1px 5px;border-radius:4px}
.description{color:#374151;margin-bottom:18px}
.grid{display:grid;gap:18px 16px;grid-template-columns:repeat(auto-fill,minmax(var(--min,150px),1fr))}
.grid.fixed{grid-template-columns:repeat(var(--cols),minmax(0,1fr))}
@media (max-width:640px){.grid.fixed{grid-template-columns:repeat(2,minmax(0,1fr))}.card{padding:18px}.report{padding:28px 14px}.bar{min-width:110px}th,td{padding-left:8px;padding-right:8px}}
figure{margin:0}
figure img{display:block;width:100%;height:auto;border-radius:8px;background:#fff;box-shadow:0 0 0 1px var(--line)}
img.pixelated{image-rendering:pixelated}
figcaption{font-size:13px;color:var(--muted);margin-top:8px;text-align:center;line-height:1.35}
.table-wrap{overflow-x:auto;background:linear-gradient(to right,var(--card) 30%,rgba(255,255,255,0)) left/32px 100% no-repeat local,linear-gradient(to left,var(--card) 30%,rgba(255,255,255,0)) right/32px 100% no-repeat local,radial-gradient(farthest-side at 0 50%,rgba(16,24,40,.18),rgba(16,24,40,0)) left/12px 100% no-repeat scroll,radial-gradient(farthest-side at 100% 50%,rgba(16,24,40,.18),rgba(16,24,40,0)) right/12px 100% no-repeat scroll}
table{width:100%;border-collapse:collapse;font-size:14px}
th{text-align:left;font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.05em;border-bottom:1px solid var(--line);padding:8px 12px;white-space:nowrap}
td{padding:10px 12px;border-bottom:1px solid var(--line);vertical-align:middle}
tbody tr:last-child td{border-bottom:none}
tbody tr:hover td{background:#fafafb}
.right{text-align:right}.center{text-align:center}
td.num{font-variant-numeric:tabular-nums}
.bar{display:flex;align-items:center;gap:10px;min-width:180px}
.bar .track{flex:1;height:8px;background:var(--track);border-radius:4px;overflow:hidden}
.bar .fill{height:100%;background:var(--pos);border-radius:4px}
.bar .fill.neg{background:var(--neg)}
.bar .value{font-variant-numeric:tabular-nums;min-width:6ch;text-align:right;font-size:13px}
.thumbs{display:flex;gap:6px;flex-wrap:wrap}
.thumbs img,td img.single{width:64px;height:64px;object-fit:cover;border-radius:6px;box-shadow:0 0 0 1px var(--line);background:#fff}
.plot{margin:0;text-align:center}
.plot img{display:inline-block;width:auto;max-width:100%;height:auto;box-shadow:none;border-radius:0}
.report-footer{color:var(--muted);font-size:12px;margin-top:36px;text-align:center}
@media print{body{background:#fff}.card{box-shadow:none;break-inside:avoid}.toc{display:none}}
`;

function isBarCell(cell: ReportCell): cell is BarCell {
  return typeof cell === 'object' && cell !== null && 'bar' in cell;
}

function formatNumber(v: number, digits: number | undefined): string {
  if (digits !== undefined) return v.toFixed(digits);
  if (Number.isInteger(v)) return String(v);
  return Number(v.toPrecision(3)).toString();
}

function imgTag(image: RasterImage, alt: string, cls: string, pixelated: boolean | undefined): string {
  assertRasterImage(image, 'report image');
  const classes = [cls, (pixelated ?? image.width < 64) ? 'pixelated' : ''].filter((c) => c !== '').join(' ');
  return `<img src="${pngDataUri(image)}" width="${image.width}" height="${image.height}" alt="${escapeHtml(alt)}"${classes === '' ? '' : ` class="${classes}"`}>`;
}

function sectionShell(section: ReportSection, index: number, body: string): string {
  const title = section.title === undefined ? '' : `<h2>${escapeHtml(section.title)}</h2>\n`;
  const description =
    'description' in section && section.description !== undefined
      ? `<div class="prose description">${markdownToHtml(section.description)}</div>\n`
      : '';
  return `<section class="card section-${section.kind}" id="section-${index + 1}">\n${title}${description}${body}\n</section>`;
}

function imagesHtml(section: ImagesSection): string {
  const { columns, minWidth = 150 } = section;
  if (columns !== undefined && !(Number.isInteger(columns) && columns >= 1)) {
    throw new CrpError('invalid-argument', `images section columns must be an integer >= 1; got ${columns}`);
  }
  const style = columns === undefined ? `--min:${minWidth}px` : `--cols:${columns}`;
  const figures = section.items.map((item, k) => {
    const caption = item.caption === undefined ? '' : `<figcaption>${escapeHtml(item.caption)}</figcaption>`;
    const alt = item.alt ?? item.caption ?? `image ${k + 1}`;
    return `<figure>${imgTag(item.image, alt, '', section.pixelated)}${caption}</figure>`;
  });
  return `<div class="grid${columns === undefined ? '' : ' fixed'}" style="${style}">\n${figures.join('\n')}\n</div>`;
}

/**
 * A table's text, where a long dotted name (a layer: `encoder.layers.encoder_layer_11.self_attention.context`) may
 * break after its dots: one unbreakable name set a column's width and pushed a table past its box. Text with
 * spaces breaks at them already; `<wbr>` leaves what is copied unchanged.
 */
function breakableName(text: string): string {
  const html = escapeHtml(text);
  return /^[^\s.]+(\.[^\s.]+){2,}$/.test(text) ? html.replaceAll('.', '.<wbr>') : html;
}

function tableHtml(section: TableSection): string {
  const columns = section.columns.map((c) => (typeof c === 'string' ? { title: c } : c));
  section.rows.forEach((row, r) => {
    if (row.length !== columns.length) {
      throw new CrpError(
        'invalid-shape',
        `table row ${r} has ${row.length} cells but the table has ${columns.length} columns`,
      );
    }
  });
  const barMax = columns.map((_, c) =>
    Math.max(0, ...section.rows.map((row) => (isBarCell(row[c]!) ? Math.abs((row[c] as BarCell).bar) : 0))),
  );
  const head = columns
    .map(
      (c) =>
        `<th${c.align === undefined || c.align === 'left' ? '' : ` class="${c.align}"`}>${escapeHtml(c.title)}</th>`,
    )
    .join('');
  const body = section.rows.map((row) => {
    const cells = row.map((cell, c) => {
      const column = columns[c]!;
      const align = column.align === undefined || column.align === 'left' ? '' : column.align;
      const td = (cls: string, html: string) => {
        const classes = [align, cls].filter((x) => x !== '').join(' ');
        return `<td${classes === '' ? '' : ` class="${classes}"`}>${html}</td>`;
      };
      if (cell === null) return td('', '');
      if (typeof cell === 'number') return td('num', escapeHtml(formatNumber(cell, column.digits)));
      if (typeof cell === 'string') return td('', breakableName(cell));
      if (isBarCell(cell)) {
        if (!Number.isFinite(cell.bar)) throw new CrpError('invalid-value', `table bar value is ${cell.bar}`);
        const max = cell.max ?? barMax[c]!;
        const pct = max > 0 ? Math.min(100, (Math.abs(cell.bar) / max) * 100) : 0;
        const text = cell.text ?? formatNumber(cell.bar, column.digits);
        return td(
          'num',
          `<div class="bar"><div class="track"><div class="fill${cell.bar < 0 ? ' neg' : ''}" style="width:${pct.toFixed(1)}%"></div></div><span class="value">${escapeHtml(text)}</span></div>`,
        );
      }
      if ('image' in cell) return td('', imgTag(cell.image, cell.alt ?? column.title, 'single', undefined));
      if ('images' in cell) {
        const thumbs = cell.images.map((im, k) =>
          imgTag(im, `${cell.alt ?? column.title} ${k + 1}`, '', undefined),
        );
        return td('', `<div class="thumbs">${thumbs.join('')}</div>`);
      }
      throw new CrpError(
        'invalid-argument',
        `table cell ${JSON.stringify(cell)} is not a string, number, bar or image`,
      );
    });
    return `<tr>${cells.join('')}</tr>`;
  });
  return `<div class="table-wrap"><table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body.join('\n')}\n</tbody>\n</table></div>`;
}

async function plotHtml(section: PlotSection): Promise<string> {
  const plot = section.plot;
  const svg = 'svg' in plot && typeof plot.svg === 'string' ? plot.svg : await renderSvg(plot as PlotSpec);
  const width = /<svg[^>]*\swidth="([\d.]+)"/.exec(svg)?.[1];
  const height = /<svg[^>]*\sheight="([\d.]+)"/.exec(svg)?.[1];
  const size = width !== undefined && height !== undefined ? ` width="${width}" height="${height}"` : '';
  const alt = section.caption ?? section.title ?? 'plot';
  const caption =
    section.caption === undefined ? '' : `<figcaption>${escapeHtml(section.caption)}</figcaption>`;
  return `<figure class="plot"><img src="${svgDataUri(svg)}"${size} alt="${escapeHtml(alt)}">${caption}</figure>`;
}

/**
 * Builds a self-contained HTML report: one file with inline CSS, images as PNG data URIs and plots as SVG data
 * URIs, and a content security policy that forbids loading anything from elsewhere. It reads well on a phone
 * and prints cleanly.
 *
 * @returns the HTML document
 * @throws CrpError for invalid sections (e.g. `invalid-shape` for a table row of the wrong length) and
 *   `render-failed` for a plot vega cannot render.
 *
 * @example
 * ```ts
 * const html = await renderReport({
 *   title: 'Concepts of features.28',
 *   sections: [
 *     { kind: 'text', title: 'Summary', markdown: 'Class **tabby cat**; top concepts below.' },
 *     { kind: 'images', title: 'Heatmaps', items: [{ image: imgify(heat, { symmetric: true }), caption: '#12' }] },
 *   ],
 * });
 * ```
 */
export async function renderReport(options: ReportOptions): Promise<string> {
  if (typeof options.title !== 'string' || !Array.isArray(options.sections)) {
    throw new CrpError('invalid-argument', 'a report needs a title (string) and sections (array)');
  }
  const parts: string[] = [];
  for (const [index, section] of options.sections.entries()) {
    let body: string;
    switch (section.kind) {
      case 'text':
        body = `<div class="prose">${markdownToHtml(section.markdown)}</div>`;
        break;
      case 'images':
        body = imagesHtml(section);
        break;
      case 'table':
        body = tableHtml(section);
        break;
      case 'plot':
        body = await plotHtml(section);
        break;
      default:
        throw new CrpError(
          'invalid-argument',
          `report section ${index} has kind '${String((section as { kind?: unknown }).kind)}'; valid kinds: text, images, table, plot`,
        );
    }
    parts.push(sectionShell(section, index, body));
  }
  const meta = Object.entries(options.meta ?? {});
  const metaHtml =
    meta.length === 0
      ? ''
      : `<dl class="meta">${meta.map(([k, v]) => `<div><dt>${escapeHtml(k)}</dt><dd>${escapeHtml(String(v))}</dd></div>`).join('')}</dl>`;
  const titled = options.sections.map((s, i) => [s.title, i] as const).filter(([t]) => t !== undefined);
  const toc =
    titled.length >= 3
      ? `<nav class="toc">${titled.map(([t, i]) => `<a href="#section-${i + 1}">${escapeHtml(t!)}</a>`).join('')}</nav>`
      : '';
  const subtitle =
    options.subtitle === undefined ? '' : `<p class="subtitle">${escapeHtml(options.subtitle)}</p>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="generator" content="@crp/vis">
<title>${escapeHtml(options.title)}</title>
<style>${CSS}</style>
</head>
<body>
<main class="report">
<header class="report-header">
<h1>${escapeHtml(options.title)}</h1>
${subtitle}${metaHtml}${toc}
</header>
${parts.join('\n')}
<footer class="report-footer">${escapeHtml(options.footer ?? 'Made with @crp/vis')}</footer>
</main>
</body>
</html>
`;
}

/** One row of {@link conceptTable}. */
export interface ConceptRow {
  /** Concept (channel) id. */
  readonly concept: number | string;
  /** Layer name; a column appears when any row has one. */
  readonly layer?: string;
  /** Its relevance (drawn as a bar; negative in blue). */
  readonly relevance: number;
  /** Optional name or note. */
  readonly label?: string;
  /** Reference images (e.g. opacity views of the most relevant samples). */
  readonly images?: readonly RasterImage[];
}

/**
 * A table section of concepts: id, (layer), (label), relevance as a bar, and (reference images), rows in the
 * given order.
 */
export function conceptTable(
  rows: readonly ConceptRow[],
  options: { title?: string; description?: string; digits?: number } = {},
): TableSection {
  const hasLayer = rows.some((r) => r.layer !== undefined);
  const hasLabel = rows.some((r) => r.label !== undefined);
  const hasImages = rows.some((r) => r.images !== undefined && r.images.length > 0);
  for (const r of rows)
    for (const im of r.images ?? []) if (!isRasterImage(im)) assertRasterImage(im, 'reference image');
  const columns: ReportColumn[] = [
    'Concept',
    ...(hasLayer ? ['Layer'] : []),
    ...(hasLabel ? ['Label'] : []),
    { title: 'Relevance', ...(options.digits === undefined ? {} : { digits: options.digits }) },
    ...(hasImages ? ['Reference images'] : []),
  ];
  const tableRows = rows.map((r) => [
    `#${r.concept}`,
    ...(hasLayer ? [r.layer ?? ''] : []),
    ...(hasLabel ? [r.label ?? ''] : []),
    { bar: r.relevance },
    ...(hasImages ? [{ images: r.images ?? [], alt: `concept ${r.concept}` }] : []),
  ]);
  return {
    kind: 'table',
    ...(options.title === undefined ? {} : { title: options.title }),
    ...(options.description === undefined ? {} : { description: options.description }),
    columns,
    rows: tableRows,
  };
}
