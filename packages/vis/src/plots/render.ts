import { CrpError } from '@crp/common';
import { base64, utf8 } from '../codecs/base64.js';
import type { VegaLiteSpec } from './charts.js';

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
 * Renders a vega-lite (or vega) spec to an SVG string, in Node without a browser and without the `canvas`
 * package (vega then estimates text widths), or in a browser. vega and vega-lite are loaded on first use.
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

/** An SVG string as a `data:image/svg+xml;base64,...` URI, for inlining into HTML. */
export function svgDataUri(svg: string): string {
  return `data:image/svg+xml;base64,${base64(utf8(svg))}`;
}
