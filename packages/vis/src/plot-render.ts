import { CrpError } from '@crp/common';
import { writeFileAtomic } from './atomic-write.js';
import type { VegaLiteSpec } from './plots.js';

/** A spec {@link renderSvg} accepts: vega-lite (from the chart builders) or full vega (an object with `marks`). */
export type PlotSpec =
  | VegaLiteSpec
  | {
      /** The marks of a full vega spec (see vega's documentation). */
      readonly marks: readonly unknown[];
      readonly [key: string]: unknown;
    };

function isVegaSpec(spec: PlotSpec): boolean {
  const schema = (spec as { $schema?: unknown }).$schema;
  if (typeof schema === 'string') return !schema.includes('vega-lite');
  return Array.isArray((spec as { marks?: unknown }).marks);
}

/**
 * Renders a vega-lite (or vega) spec to an SVG string in Node, without a browser and without the `canvas`
 * package (vega then estimates text widths). vega and vega-lite are loaded on first use.
 *
 * @throws CrpError `render-failed` if vega rejects the spec.
 */
export async function renderSvg(spec: PlotSpec): Promise<string> {
  try {
    const vega = await import('vega');
    let vegaSpec: unknown = spec;
    if (!isVegaSpec(spec)) {
      const vl = await import('vega-lite');
      vegaSpec = vl.compile(spec as VegaLiteSpec).spec;
    }
    // vega logs some failures instead of throwing: collect them and fail loudly instead of printing
    const problems: string[] = [];
    const logger = vega.logger(vega.Error, undefined, (method, _level, args) => {
      if (method === 'error')
        problems.push(args.map((a) => (a instanceof Error ? a.message : String(a))).join(' '));
    });
    const view = new vega.View(vega.parse(vegaSpec as Parameters<typeof vega.parse>[0]), {
      renderer: 'none',
      logger,
    });
    try {
      const svg = await view.toSVG();
      if (problems.length > 0) throw new Error(problems.join('; '));
      return svg;
    } finally {
      view.finalize();
    }
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new CrpError('render-failed', `could not render the plot: ${reason}`, { cause: err });
  }
}

/** Options of {@link svgToPng} and {@link renderPng}. */
export interface PngRenderOptions {
  /** Pixel density: 2 renders at twice the SVG's size (sharp on high-DPI screens and in slides); default 2. */
  scale?: number;
  /** Background colour (CSS); default transparent where the SVG draws nothing. */
  background?: string;
}

/**
 * Rasterises an SVG string to PNG bytes with resvg (a native renderer shipped as prebuilt npm packages; text
 * uses the system's fonts).
 *
 * @throws CrpError `render-failed`.
 */
export async function svgToPng(svg: string, options: PngRenderOptions = {}): Promise<Uint8Array> {
  const { scale = 2, background } = options;
  if (!(scale > 0 && scale <= 16)) {
    throw new CrpError('invalid-argument', `PNG scale must be in (0, 16]; got ${scale}`);
  }
  try {
    const { Resvg } = await import('@resvg/resvg-js');
    const resvg = new Resvg(svg, {
      fitTo: { mode: 'zoom', value: scale },
      font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
      ...(background === undefined ? {} : { background }),
    });
    const png = resvg.render().asPng();
    return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new CrpError('render-failed', `could not rasterise the SVG: ${reason}`, { cause: err });
  }
}

/** Renders a spec to PNG bytes: {@link renderSvg}, then {@link svgToPng}. */
export async function renderPng(spec: PlotSpec, options: PngRenderOptions = {}): Promise<Uint8Array> {
  return svgToPng(await renderSvg(spec), options);
}

/**
 * Renders a spec and writes it atomically as `.svg` or `.png` (by the path's extension).
 *
 * @throws CrpError `unsupported-format` for other extensions, `render-failed`, `write-failed`.
 */
export async function writePlot(path: string, spec: PlotSpec, options: PngRenderOptions = {}): Promise<void> {
  const lower = path.toLowerCase();
  if (lower.endsWith('.svg')) {
    await writeFileAtomic(path, await renderSvg(spec));
  } else if (lower.endsWith('.png')) {
    await writeFileAtomic(path, await renderPng(spec, options));
  } else {
    throw new CrpError('unsupported-format', `cannot write a plot to ${path}; valid extensions: .svg, .png`);
  }
}

/** An SVG string as a `data:image/svg+xml;base64,...` URI, for inlining into HTML. */
export function svgDataUri(svg: string): string {
  return `data:image/svg+xml;base64,${Buffer.from(svg, 'utf8').toString('base64')}`;
}
