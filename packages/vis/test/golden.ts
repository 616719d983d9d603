import { readFileSync } from 'node:fs';
import { referencePath } from '@crp/testing/reference';

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
export function loadGolden(): { palette: PaletteCase[]; imgify: ImgifyCase[] } {
  const json = JSON.parse(readFileSync(referencePath('vis', 'vis_golden.json'), 'utf8')) as {
    cases: (PaletteCase | ImgifyCase)[];
  };
  return {
    palette: json.cases.filter((c): c is PaletteCase => c.kind === 'palette'),
    imgify: json.cases.filter((c): c is ImgifyCase => c.kind === 'imgify'),
  };
}
