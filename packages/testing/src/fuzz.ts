/**
 * Bounded, seeded mutation fuzzing of the toolkit's file parsers. Every run takes one of the valid seed files,
 * applies one to three mutations (generic byte mutations and, where the caller gives them, mutations that know
 * the format's grammar) and hands the bytes to the parser. The parser passes a run when it returns or throws a
 * `CrpError` with one of the accepted codes; anything else (a `RangeError`, a `TypeError`, an error of a
 * dependency) is a finding. The same seed gives the same files, so a finding is reproduced by its run number.
 *
 * No vitest import: the mutation check and scripts may use it too.
 */
import { CrpError, type CrpErrorCode, mulberry32 } from '@crp/common';

/** A seeded source of uniform numbers in [0, 1). */
export type Rng = () => number;

/** Changes bytes; may return the input itself (changed in place) or a new array. */
export type Mutator = (bytes: Uint8Array, rng: Rng) => Uint8Array;

/** An integer in [0, n). */
export function randomInt(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

/** One of the items. */
export function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[randomInt(rng, items.length)]!;
}

/**
 * Values that break length and offset fields most often: zero, one, small negatives, the largest values of
 * each width and their neighbours (as unsigned 32-bit patterns; `-1` is `0xffffffff`).
 */
export const INTERESTING_U32 = [
  0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe,
  0xffffffff, 0xfffffffb /* -5 */,
];

/** Writes a 32-bit little-endian value at `at` (bytes beyond the end are dropped). */
export function writeU32(bytes: Uint8Array, at: number, value: number): void {
  for (let k = 0; k < 4 && at + k < bytes.length; k++) bytes[at + k] = (value >>> (8 * k)) & 0xff;
}

/** Generic mutations that know nothing of the format. */
export const byteMutators: Readonly<Record<string, Mutator>> = {
  /** Flips one bit. */
  bitFlip: (b, rng) => {
    if (b.length > 0) b[randomInt(rng, b.length)]! ^= 1 << randomInt(rng, 8);
    return b;
  },
  /** Sets one byte to a random value. */
  byte: (b, rng) => {
    if (b.length > 0) b[randomInt(rng, b.length)] = randomInt(rng, 256);
    return b;
  },
  /** Cuts the file at a random point. */
  truncate: (b, rng) => b.subarray(0, randomInt(rng, b.length + 1)),
  /** Inserts 1 to 16 random bytes at a random point. */
  insert: (b, rng) => {
    const at = randomInt(rng, b.length + 1);
    const extra = Uint8Array.from({ length: 1 + randomInt(rng, 16) }, () => randomInt(rng, 256));
    return concat(b.subarray(0, at), extra, b.subarray(at));
  },
  /** Duplicates a random run of up to 64 bytes in place. */
  duplicate: (b, rng) => {
    if (b.length === 0) return b;
    const start = randomInt(rng, b.length);
    const end = Math.min(b.length, start + 1 + randomInt(rng, 64));
    return concat(b.subarray(0, end), b.subarray(start, end), b.subarray(end));
  },
  /** Removes a random run of up to 64 bytes. */
  remove: (b, rng) => {
    if (b.length === 0) return b;
    const start = randomInt(rng, b.length);
    const end = Math.min(b.length, start + 1 + randomInt(rng, 64));
    return concat(b.subarray(0, start), b.subarray(end));
  },
  /** Writes an interesting 32-bit value (a length or offset gone wrong) at a random point. */
  interesting: (b, rng) => {
    if (b.length > 0) writeU32(b, randomInt(rng, b.length), pick(rng, INTERESTING_U32));
    return b;
  },
};

/** The bytes of the arrays, one after the other, in a new array. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Offsets at which `pattern` occurs in `bytes`. */
export function findAll(bytes: Uint8Array, pattern: readonly number[]): number[] {
  const out: number[] = [];
  outer: for (let i = 0; i + pattern.length <= bytes.length; i++) {
    for (let k = 0; k < pattern.length; k++) if (bytes[i + k] !== pattern[k]) continue outer;
    out.push(i);
  }
  return out;
}

/** Values that a JSON field gone wrong may hold. */
const ODD_JSON: readonly unknown[] = [
  null,
  true,
  0,
  -1,
  1,
  3.5,
  1e20,
  2 ** 53 + 2,
  -(2 ** 31),
  '',
  'x',
  'float64',
  [],
  [0],
  [-1, 2 ** 40],
  {},
  { a: 1 },
];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every container in a JSON value with the keys (or indices) it holds. */
function containers(value: Json, out: [Json[] | Record<string, Json>, (string | number)[]][] = []) {
  if (Array.isArray(value)) {
    out.push([value, value.map((_, i) => i)]);
    for (const v of value) containers(v, out);
  } else if (value !== null && typeof value === 'object') {
    out.push([value, Object.keys(value)]);
    for (const v of Object.values(value)) containers(v, out);
  }
  return out;
}

/**
 * Mutates a parsed JSON value in place, knowing only JSON's grammar: replaces a field with an odd value, deletes a
 * field, or copies one field's value onto another (a shape where a name was, a list of the wrong length).
 */
export function mutateJson(value: Json, rng: Rng): void {
  const all = containers(value).filter(([, keys]) => keys.length > 0);
  if (all.length === 0) return;
  const [container, keys] = pick(rng, all);
  const key = pick(rng, keys);
  const record = container as Record<string | number, Json>;
  const choice = randomInt(rng, 3);
  if (choice === 0) record[key] = structuredClone(pick(rng, ODD_JSON)) as Json;
  else if (choice === 1) {
    if (Array.isArray(container)) container.splice(key as number, 1);
    else delete record[key];
  } else {
    const [other, otherKeys] = pick(rng, all);
    record[key] = structuredClone((other as Record<string | number, Json>)[pick(rng, otherKeys)]!);
  }
}

/** One input the parser mishandled. */
export interface FuzzFinding {
  /** The run number (with the same options, the same bytes). */
  run: number;
  /** The seed file and the mutations applied, in order. */
  recipe: string;
  /** What the parser threw (class and message), or why the result was refused. */
  error: string;
  /** The mutated bytes, to turn the finding into a regression test. */
  bytes: Uint8Array;
}

/** What a {@link fuzz} campaign saw. */
export interface FuzzReport {
  runs: number;
  /** Runs whose bytes the parser accepted. */
  accepted: number;
  /** Runs refused with a CrpError, by code. */
  refused: Record<string, number>;
  findings: FuzzFinding[];
}

/** Options of {@link fuzz}. */
export interface FuzzOptions {
  /** Valid files to mutate, by name. */
  seeds: Readonly<Record<string, Uint8Array>>;
  /** The parser under test: returns (any value) or throws. May be async. */
  target: (bytes: Uint8Array) => unknown;
  /** Number of mutated files. */
  runs: number;
  /** Seed of the PRNG. */
  seed: number;
  /** CrpError codes that count as a clean refusal. */
  codes: readonly CrpErrorCode[];
  /** Mutations that know the format, used for half of the mutations when given. */
  grammar?: Readonly<Record<string, Mutator>>;
  /** Stop after this many findings (default 5). */
  maxFindings?: number;
  /** Called before each run (to find the run that crashed the process, write it somewhere synchronously). */
  trace?: (run: number, recipe: string, bytes: Uint8Array) => void;
}

/**
 * Runs the campaign; see the module comment. Runs one after another, so sync parsers stay deterministic. For a
 * longer search outside CI, `FUZZ_SCALE=20` multiplies the runs and `FUZZ_SEED=n` is added to the seed.
 */
export async function fuzz(options: FuzzOptions): Promise<FuzzReport> {
  const env = typeof process === 'undefined' ? {} : process.env;
  const runs = options.runs * Number(env.FUZZ_SCALE ?? 1);
  const rng = mulberry32(options.seed + Number(env.FUZZ_SEED ?? 0));
  const seedNames = Object.keys(options.seeds);
  const generic = Object.entries(byteMutators);
  const grammar = Object.entries(options.grammar ?? {});
  const report: FuzzReport = { runs: 0, accepted: 0, refused: {}, findings: [] };
  for (let run = 0; run < runs; run++) {
    const seedName = pick(rng, seedNames);
    let bytes: Uint8Array = options.seeds[seedName]!.slice();
    const steps: string[] = [];
    const count = 1 + randomInt(rng, 3);
    for (let m = 0; m < count; m++) {
      const [name, mutate] = grammar.length > 0 && rng() < 0.5 ? pick(rng, grammar) : pick(rng, generic);
      bytes = mutate(bytes, rng);
      steps.push(name);
    }
    // a fresh, tight copy: parsers must not rely on reading beyond the view they were given
    const input = bytes.slice();
    const recipe = `${seedName} + ${steps.join(' + ')}`;
    options.trace?.(run, recipe, input);
    report.runs++;
    try {
      await options.target(input);
      report.accepted++;
    } catch (err) {
      if (err instanceof CrpError && options.codes.includes(err.code)) {
        report.refused[err.code] = (report.refused[err.code] ?? 0) + 1;
        continue;
      }
      const error =
        err instanceof CrpError
          ? `CrpError ${err.code}: ${err.message}`
          : err instanceof Error
            ? `${err.constructor.name}: ${err.message}`
            : String(err);
      report.findings.push({ run, recipe, error, bytes });
      if (report.findings.length >= (options.maxFindings ?? 5)) break;
    }
  }
  return report;
}

/**
 * Throws (a plain Error, so the run becomes a finding) when a parser's result holds more bytes than `limit`: the
 * check that a file cannot make its reader allocate more than the file allows.
 */
export function checkAllocation(what: string, bytes: number, limit: number): void {
  if (bytes > limit)
    throw new Error(`${what} allocated ${bytes} bytes, more than the ${limit} the file allows`);
}

/** One line: runs, how many were read, how many refused by code, how many findings. */
export function summarize(name: string, report: FuzzReport): string {
  const refused = Object.entries(report.refused)
    .map(([code, n]) => `${n} ${code}`)
    .join(', ');
  return `${name}: ${report.runs} mutated files, ${report.accepted} read, refused: ${refused || 'none'}; ${report.findings.length} findings`;
}

/** A readable summary of the findings, for an assertion message. */
export function describeFindings(report: FuzzReport): string {
  return report.findings
    .map((f) => `run ${f.run} (${f.recipe}, ${f.bytes.length} bytes): ${f.error.slice(0, 300)}`)
    .join('\n');
}
