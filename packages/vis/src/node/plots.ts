import { CrpError } from '@crp/common';
import { writeFileAtomic } from '@crp/common/node';
import { type PlotSpec, renderSvg } from '../plots/render.js';

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
