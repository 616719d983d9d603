import { CrpError } from '@crp/common';

/**
 * The built-in colour maps of zennit, by name, as colour-map source (see {@link ColorMap} for the language).
 * Diverging maps (`coldnhot`, `bwr`, `france`, `seismic`, `coolio`, `coleus`) have their neutral colour at
 * index `80` (the middle), so that with symmetric normalisation zero relevance gets the neutral colour.
 */
export const BUILTIN_COLOR_MAPS = Object.freeze({
  /** black to white */
  gray: '000,fff',
  /** white to red */
  wred: 'fff,f00',
  /** white to blue */
  wblue: 'fff,00f',
  /** black to red to yellow to white */
  hot: '000,f00,ff0,fff',
  /** black to blue to cyan */
  cold: '000,00f,0ff',
  /** cold (reversed) and hot, centred on black */
  coldnhot: '0ff,00f,80:000,f00,ff0,fff',
  /** blue to white to red, centred on white */
  bwr: '00f,80:fff,f00',
  /** blue to white to red as in the French flag */
  france: '0055a4,80:fff,ef4135',
  /** blue to grey to red with brightness 0xd0 */
  seismic: '0000d0,80:d0d0d0,d00000',
  /** cyan to grey to magenta with brightness 0xd0 */
  coolio: '00d0d0,80:d0d0d0,d000d0',
  /** green to grey to magenta with brightness 0xd0 */
  coleus: '00d000,80:d0d0d0,d000d0',
} as const);

/** Name of a built-in colour map. */
export type BuiltinColorMapName = keyof typeof BUILTIN_COLOR_MAPS;

/** The names of the built-in colour maps, in their documented order. */
export function builtinColorMapNames(): BuiltinColorMapName[] {
  return Object.keys(BUILTIN_COLOR_MAPS) as BuiltinColorMapName[];
}

/** A node of a compiled colour map: the colour (0..255 per channel) at an index in 0..256. */
export interface ColorNode {
  /** Position in 0..256 (256 is the implicit end node). */
  readonly index: number;
  /** `[r, g, b]`, each 0..255. */
  readonly color: readonly [number, number, number];
}

type TokenType = 'longcolor' | 'shortcolor' | 'index' | 'adsep' | 'sep' | 'whitespace' | 'error';

interface Token {
  type: TokenType;
  value: string;
  pos: number;
}

interface ParsedNode {
  index: number | undefined;
  color: [number, number, number];
  /** position of the node's first character (its index, if any) */
  pos: number;
}

const TOKEN_RE =
  /(?<longcolor>[0-9a-fA-F]{6})|(?<shortcolor>[0-9a-fA-F]{3})|(?<index>[0-9a-fA-F]{1,2})|(?<adsep>:)|(?<sep>,)|(?<whitespace>\s+)|(?<error>.+)/y;

const LANGUAGE_HELP =
  "valid source is comma-separated colours of 3 or 6 hex digits, each optionally preceded by a hex index of 1 or 2 digits and ':' (e.g. '00f,80:fff,f00')";

function syntaxError(source: string, pos: number, what: string): CrpError {
  const names = builtinColorMapNames().join(', ');
  const message =
    `invalid colour-map source at index ${pos}: ${what}\n` +
    `  ${source}\n` +
    `  ${' '.repeat(pos)}^\n` +
    `${LANGUAGE_HELP}; or use a built-in name: ${names}`;
  return new CrpError('invalid-colormap', message, { details: { index: pos } });
}

function lex(source: string): Token[] {
  const tokens: Token[] = [];
  TOKEN_RE.lastIndex = 0;
  while (TOKEN_RE.lastIndex < source.length) {
    const pos = TOKEN_RE.lastIndex;
    const match = TOKEN_RE.exec(source);
    const groups = match?.groups;
    if (match === null || groups === undefined) throw syntaxError(source, pos, 'unreadable character');
    const type = (Object.keys(groups) as TokenType[]).find((k) => groups[k] !== undefined)!;
    tokens.push({ type, value: match[0], pos });
  }
  return tokens;
}

function describe(token: Token): string {
  return JSON.stringify(token.value.length > 12 ? `${token.value.slice(0, 12)}...` : token.value);
}

function parse(source: string, tokens: Token[]): ParsedNode[] {
  const nodes: ParsedNode[] = [];
  const log: Token[] = [];
  for (const token of tokens) {
    if (token.type === 'index' && log.length === 0) {
      log.push(token);
    } else if (token.type === 'adsep' && log.length === 1 && log[0]!.type === 'index') {
      log.push(token);
    } else if (token.type === 'shortcolor' || token.type === 'longcolor') {
      let index: number | undefined;
      if (log.length === 2 && log[0]!.type === 'index') {
        const digits = log[0]!.value.length === 1 ? log[0]!.value.repeat(2) : log[0]!.value;
        index = Number.parseInt(digits, 16);
      } else if (log.length === 0) {
        index = undefined;
      } else if (log[log.length - 1]!.type === 'index') {
        throw syntaxError(
          source,
          token.pos,
          `expected ':' between the index and the colour ${describe(token)}`,
        );
      } else {
        throw syntaxError(source, token.pos, `expected ',' before the colour ${describe(token)}`);
      }
      const v = token.value;
      const color: [number, number, number] =
        token.type === 'shortcolor'
          ? ([0, 1, 2].map((k) => Number.parseInt(v[k]!.repeat(2), 16)) as [number, number, number])
          : ([0, 2, 4].map((k) => Number.parseInt(v.slice(k, k + 2), 16)) as [number, number, number]);
      const pos = index === undefined ? token.pos : log[0]!.pos;
      log.push(token);
      nodes.push({ index, color, pos });
    } else if (
      token.type === 'sep' &&
      log.length > 0 &&
      (log[log.length - 1]!.type === 'longcolor' || log[log.length - 1]!.type === 'shortcolor')
    ) {
      log.length = 0;
    } else if (token.type !== 'whitespace') {
      throw syntaxError(source, token.pos, unexpected(token, log));
    }
  }
  const last = log[log.length - 1];
  if (last !== undefined && last.type !== 'shortcolor' && last.type !== 'longcolor') {
    throw syntaxError(source, source.length, `source ends after ${describe(last)}, expected a colour`);
  }
  return nodes;
}

function unexpected(token: Token, log: Token[]): string {
  const shown = describe(token);
  switch (token.type) {
    case 'error':
      return `unexpected character ${JSON.stringify(token.value[0])} (only hex digits, ':', ',' and spaces are allowed)`;
    case 'index':
      return log.length > 0 && log[log.length - 1]!.type === 'adsep'
        ? `${shown} is not a colour: a colour has exactly 3 or 6 hex digits`
        : `unexpected ${shown}: a colour has exactly 3 or 6 hex digits, and colours are separated by ','`;
    case 'adsep':
      return "unexpected ':' (':' must follow an index of 1 or 2 hex digits)";
    case 'sep':
      return "unexpected ',' (',' must follow a colour)";
    default:
      return `unexpected ${shown}`;
  }
}

function compile(source: string, parsed: ParsedNode[]): ColorNode[] {
  if (parsed.length < 2) {
    throw new CrpError(
      'invalid-colormap',
      `colour-map source ${JSON.stringify(source)} has ${parsed.length} colour(s); a colour map needs at least 2 (${LANGUAGE_HELP})`,
    );
  }
  const result: ColorNode[] = [];
  const log: ParsedNode[] = [];
  const [start, ...rest] = parsed as [ParsedNode, ...ParsedNode[]];
  result.push({ index: 0, color: start.color });
  if (start.index !== undefined && start.index > 0) result.push({ index: start.index, color: start.color });

  rest.forEach((node, n) => {
    let index: number;
    if (node.index === undefined) {
      if (n < rest.length - 1) {
        log.push(node);
        return;
      }
      index = 255;
    } else {
      const previous = result[result.length - 1]!.index;
      if (node.index < previous) {
        throw new CrpError(
          'invalid-colormap',
          `colour-map indices must rise from left to right, but index ${node.index.toString(16)} at position ${node.pos} ` +
            `follows index ${previous.toString(16)} in ${JSON.stringify(source)}\n  ${source}\n  ${' '.repeat(node.pos)}^`,
          { details: { index: node.pos } },
        );
      }
      index = node.index;
    }
    if (log.length > 0) {
      const from = result[result.length - 1]!.index;
      // numpy.linspace(0, 1, len(log) + 2)[1:-1]: k * (1 / (len + 1))
      const step = 1 / (log.length + 1);
      log.forEach((pending, k) => {
        const alpha = (k + 1) * step;
        result.push({ index: Math.trunc(from * (1 - alpha) + index * alpha), color: pending.color });
      });
      log.length = 0;
    }
    result.push({ index, color: node.color });
  });
  result.push({ index: 256, color: result[result.length - 1]!.color });
  return result;
}

/** Round half to even, like numpy's `rint`. */
function rint(y: number): number {
  const r = Math.round(y);
  return r - y === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * A linear colour map compiled from colour-map source, the colour-map language of zennit:
 *
 * - comma-separated colours of 3 or 6 hex digits (`f00` = `ff0000`);
 * - each optionally preceded by a hex index of 1 or 2 digits and a colon (`80:fff`; a 1-digit index is
 *   doubled, so `8:` = `88:`); indices must rise from left to right;
 * - colours without index are spread evenly between their indexed neighbours; the first colour is at 0 and
 *   the last at 255 unless indexed.
 *
 * Values in [0, 1] are mapped by linear interpolation between the nodes, exactly as `zennit.cmap.ColorMap`
 * does, so palettes match zennit's byte for byte.
 *
 * @example
 * ```ts
 * const cmap = new ColorMap('00f,80:fff,f00'); // the built-in 'bwr'
 * cmap.map(0.5); // [1, 1, 1]
 * ```
 */
export class ColorMap {
  /** The source this map was compiled from. */
  readonly source: string;
  /** The compiled nodes, with the implicit nodes at 0 and 256 included. */
  readonly nodes: readonly ColorNode[];
  private readonly indices: Float64Array;

  /**
   * Compiles colour-map source.
   *
   * @throws CrpError `invalid-colormap` (with `index` and a caret under the offending character),
   *   `invalid-colormap` or `invalid-colormap`.
   */
  constructor(source: string) {
    if (typeof source !== 'string') {
      throw new CrpError(
        'invalid-colormap',
        `colour-map source must be a string; got ${typeof source}. ${LANGUAGE_HELP}`,
      );
    }
    this.source = source;
    this.nodes = Object.freeze(compile(source, parse(source, lex(source))));
    this.indices = Float64Array.from(this.nodes, (n) => n.index);
  }

  /** Maps a value in [0, 1] (clipped) to an RGB colour with channels in [0, 1]. */
  map(x: number): [number, number, number] {
    const out: [number, number, number] = [0, 0, 0];
    this.mapInto(x, out, 0);
    return out;
  }

  private mapInto(x: number, out: { [k: number]: number }, at: number): void {
    let t = x * 255;
    t = Math.min(Math.max(t, 0), 255);
    const indices = this.indices;
    // searchsorted(indices[:-1], t, side='right')
    let hi = 0;
    const last = indices.length - 1;
    while (hi < last && indices[hi]! <= t) hi++;
    const i0 = indices[hi - 1]!;
    const i1 = indices[hi]!;
    const alpha = (t - i0) / (i1 - i0);
    const c0 = this.nodes[hi - 1]!.color;
    const c1 = this.nodes[hi]!.color;
    for (let c = 0; c < 3; c++) {
      out[at + c] = (c0[c]! * (1 - alpha) + c1[c]! * alpha) / 255;
    }
  }

  /**
   * The 256-entry palette before truncation to bytes: for k in 0..255,
   * `x_k = clip((linspace(-1, 1, 256)[k] * level + 1) / 2, 0, 1)`, mapped, times 255, rounded to 12 decimals and
   * clipped to [0, 255]. Row-major `[256, 3]`.
   *
   * @param level - 1 uses the whole map; below 1 narrows the colour range around the middle, above 1 saturates
   *   earlier. Must be finite.
   */
  paletteValues(level = 1): Float64Array {
    if (!Number.isFinite(level)) {
      throw new CrpError('invalid-argument', `palette level must be a finite number; got ${level}`);
    }
    const out = new Float64Array(256 * 3);
    const step = 2 / 255;
    for (let k = 0; k < 256; k++) {
      const lin = k === 255 ? 1 : k * step + -1;
      let x = (lin * level + 1) / 2;
      x = Math.min(Math.max(x, 0), 1);
      this.mapInto(x, out, k * 3);
      for (let c = 0; c < 3; c++) {
        let v = rint(out[k * 3 + c]! * 255 * 1e12) / 1e12;
        v = Math.min(Math.max(v, 0), 255);
        out[k * 3 + c] = v;
      }
    }
    return out;
  }

  /** The 256-entry 8-bit palette at `level` (row-major `[256, 3]`), identical to zennit's `ColorMap.palette`. */
  palette(level = 1): Uint8Array {
    return Uint8Array.from(this.paletteValues(level), (v) => Math.trunc(v));
  }
}

const builtinCache = new Map<string, ColorMap>();

/**
 * Resolves a colour map: a {@link ColorMap} is returned as is, a built-in name (see {@link BUILTIN_COLOR_MAPS})
 * gives that map (compiled once), anything else is compiled as colour-map source.
 *
 * @throws CrpError `invalid-colormap` etc. for a string that is neither a built-in name nor valid source.
 */
export function getColorMap(cmap: string | ColorMap): ColorMap {
  if (cmap instanceof ColorMap) return cmap;
  if (typeof cmap === 'string' && Object.hasOwn(BUILTIN_COLOR_MAPS, cmap)) {
    let compiled = builtinCache.get(cmap);
    if (compiled === undefined) {
      compiled = new ColorMap(BUILTIN_COLOR_MAPS[cmap as BuiltinColorMapName]);
      builtinCache.set(cmap, compiled);
    }
    return compiled;
  }
  return new ColorMap(cmap);
}

/**
 * The 8-bit palette (row-major `[256, 3]`) of a built-in colour map or of colour-map source at `level`,
 * byte-identical to `zennit.image.palette`.
 *
 * @param cmap - built-in name, colour-map source or {@link ColorMap}; default `'bwr'`
 * @param level - see {@link ColorMap.paletteValues}; default 1
 */
export function palette(cmap: string | ColorMap = 'bwr', level = 1): Uint8Array {
  return getColorMap(cmap).palette(level);
}
