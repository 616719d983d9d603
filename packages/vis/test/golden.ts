import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A golden tensor of vis_golden.json. */
export interface GoldenArray {
  layout: string;
  shape: number[];
  data: number[];
}

export interface PaletteCase {
  id: string;
  kind: 'palette';
  cmap: string;
  level: number;
  palette: GoldenArray;
}

export interface ImgifyCase {
  id: string;
  kind: 'imgify';
  settings: Record<string, unknown>;
  input: GoldenArray;
  rgb: GoldenArray;
}

/** The golden reference vectors vendored in the repository (vendor/reference), as conformance reads. */
export const referenceDir = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'vendor',
  'reference',
);

export function loadGolden(): { palette: PaletteCase[]; imgify: ImgifyCase[] } {
  const json = JSON.parse(readFileSync(resolve(referenceDir, 'vis', 'vis_golden.json'), 'utf8')) as {
    cases: (PaletteCase | ImgifyCase)[];
  };
  return {
    palette: json.cases.filter((c): c is PaletteCase => c.kind === 'palette'),
    imgify: json.cases.filter((c): c is ImgifyCase => c.kind === 'imgify'),
  };
}
