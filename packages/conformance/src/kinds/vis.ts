import { getColorMap, type ImgifyOptions, imgify, normalizeToBytes, palette } from '@crp/vis';
import { discoverBundledCases } from '../discover.js';
import type { CaseOutcome, CaseRef, KindRunner } from '../types.js';

interface GoldenArray {
  layout?: string;
  shape: number[];
  data: number[];
}

interface PaletteCase {
  id: string;
  kind: 'palette';
  cmap: string;
  level: number;
  palette: GoldenArray;
}

interface ImgifyCase {
  id: string;
  kind: 'imgify';
  settings: Record<string, unknown>;
  input: GoldenArray;
  rgb: GoldenArray;
}

type VisCase = PaletteCase | ImgifyCase;

/**
 * How close (absolute) a value before truncation to uint8 must lie to the integer where truncation switches
 * between the two compared bytes to count as a rounding tie. Palette values are float64 rounded to 12
 * decimals; imgify values are float32 near 255 (one ulp there is 1.5e-5).
 */
const PALETTE_TIE = 1e-9;
const IMGIFY_TIE = 1e-4;

/** Comparison of uint8 outputs: exact, except a difference of 1 where the value before quantisation sits on
 * the quantisation boundary (a float rounding tie), which zennit's float arithmetic may resolve either way. */
interface ByteComparison {
  mismatches: number;
  ties: number;
  maxDiff: number;
}

function compareBytes(
  ours: ArrayLike<number>,
  golden: ArrayLike<number>,
  isTie: (i: number, ours: number, golden: number) => boolean,
): ByteComparison {
  let mismatches = 0;
  let ties = 0;
  let maxDiff = 0;
  for (let i = 0; i < golden.length; i++) {
    const o = ours[i]!;
    const g = golden[i]!;
    if (o === g) continue;
    const d = Math.abs(o - g);
    if (d === 1 && isTie(i, o, g)) {
      ties++;
    } else {
      mismatches++;
      maxDiff = Math.max(maxDiff, d);
    }
  }
  return { mismatches, ties, maxDiff };
}

/** True if `value` (before truncation) lies within `eps` of the integer that separates bytes a and b. */
function onBoundary(value: number, a: number, b: number, eps: number): boolean {
  return Math.abs(value - Math.max(a, b)) <= eps;
}

function settingsOf(raw: Record<string, unknown>): ImgifyOptions {
  const known = new Set(['cmap', 'symmetric', 'level', 'vmin', 'vmax', 'grid', 'gridfill']);
  for (const key of Object.keys(raw)) {
    if (!known.has(key)) throw new Error(`unknown imgify setting '${key}'; known: ${[...known].join(', ')}`);
  }
  return raw as ImgifyOptions;
}

function outcome(ref: CaseRef, cmp: ByteComparison, count: number): CaseOutcome {
  const passed = cmp.mismatches === 0;
  // tolerance: 0 for ordinary values, 1 at a rounding tie
  const worst = passed ? (cmp.ties > 0 ? 1 : 0) : Number.POSITIVE_INFINITY;
  const detail = passed
    ? `${count} values, ${cmp.ties === 0 ? 'all equal' : `${cmp.ties} differ by 1 at rounding ties`}`
    : `${cmp.mismatches} of ${count} values differ (max |diff| ${cmp.maxDiff}), ${cmp.ties} more at rounding ties`;
  return { id: ref.id, kind: ref.kind, passed, worst, detail };
}

function runPalette(ref: CaseRef, c: PaletteCase): CaseOutcome {
  const ours = palette(c.cmap, c.level);
  const raw = getColorMap(c.cmap).paletteValues(c.level);
  if (ours.length !== c.palette.data.length) {
    return {
      id: ref.id,
      kind: ref.kind,
      passed: false,
      worst: Number.POSITIVE_INFINITY,
      detail: 'palette size differs',
    };
  }
  const cmp = compareBytes(ours, c.palette.data, (i, o, g) => onBoundary(raw[i]!, o, g, PALETTE_TIE));
  return outcome(ref, cmp, ours.length);
}

function runImgify(ref: CaseRef, c: ImgifyCase): CaseOutcome {
  const settings = settingsOf(c.settings);
  const input = { data: Float32Array.from(c.input.data), shape: c.input.shape };
  const image = imgify(input, settings);
  const shape = [image.height, image.width, image.channels];
  if (shape.join() !== c.rgb.shape.join()) {
    return {
      id: ref.id,
      kind: ref.kind,
      passed: false,
      worst: Number.POSITIVE_INFINITY,
      detail: `shape [${shape.join(', ')}] != golden [${c.rgb.shape.join(', ')}]`,
    };
  }
  // The alternative image: every byte whose value before truncation sits on an integer boundary takes the
  // other side. A mismatch is a tie only if the golden value equals this alternative there.
  const { bytes, scaled, shape: byteShape } = normalizeToBytes(input, settings);
  let alternative: Uint8Array | undefined;
  if (scaled !== undefined) {
    const alt = Uint8Array.from(bytes);
    let any = false;
    for (let i = 0; i < scaled.length; i++) {
      const s = scaled[i]!;
      const n = Math.round(s);
      if (n >= 1 && n <= 255 && Math.abs(s - n) <= IMGIFY_TIE) {
        alt[i] = bytes[i] === n ? n - 1 : n;
        any = true;
      }
    }
    if (any) {
      const { cmap, level, grid, gridfill } = settings;
      alternative = imgify(
        { data: alt, shape: byteShape },
        {
          ...(cmap === undefined ? {} : { cmap }),
          ...(level === undefined ? {} : { level }),
          ...(grid === undefined ? {} : { grid }),
          ...(gridfill === undefined ? {} : { gridfill }),
        },
      ).data;
    }
  }
  const cmp = compareBytes(
    image.data,
    c.rgb.data,
    (i, _o, g) => alternative !== undefined && alternative[i] === g,
  );
  return outcome(ref, cmp, image.data.length);
}

/** Golden heatmap colouring cases of `vis/vis_golden.json` (zennit.cmap / zennit.image): palettes and imgify,
 * compared byte for byte. */
export const visRunner: KindRunner = {
  kind: 'vis',
  discover: (dir, files) => discoverBundledCases(dir, files, 'vis/vis_golden.json', 'vis'),
  async run(ref: CaseRef): Promise<CaseOutcome> {
    const c = (await ref.load()) as VisCase;
    if (c.kind === 'palette') return runPalette(ref, c);
    if (c.kind === 'imgify') return runImgify(ref, c);
    return {
      id: ref.id,
      kind: ref.kind,
      passed: false,
      worst: Number.POSITIVE_INFINITY,
      detail: `unknown vis case kind '${(c as { kind?: unknown }).kind}'; known: palette, imgify`,
    };
  },
};
