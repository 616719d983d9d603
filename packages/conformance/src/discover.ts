import { readdir, readFile, stat } from 'node:fs/promises';
import { join, normalize, relative } from 'node:path';
import { CrpError, describeError } from '@crp/common';
import type { CaseRef } from './types.js';

/** One case listed by a reference directory's index.json. */
export interface IndexEntry {
  id: string;
  kind: string;
  /** Path of the case file, relative to the directory. */
  file: string;
}

const INDEX_FORMAT = 'lrp-golden-index/';

function isNodeError(err: unknown, code: string): boolean {
  return (err as { code?: unknown } | null)?.code === code;
}

async function jsonFilesIn(dir: string): Promise<string[] | undefined> {
  try {
    return (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  } catch (err) {
    if (isNodeError(err, 'ENOENT')) return undefined;
    throw new CrpError('read-failed', `cannot list ${dir}: ${describeError(err)}`, { cause: err });
  }
}

/** Reads and parses a JSON file of the reference data; a missing file gives `undefined` when `optional`. */
async function readJson(file: string, optional: boolean): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (optional && isNodeError(err, 'ENOENT')) return undefined;
    throw new CrpError('read-failed', `cannot read ${file}: ${describeError(err)}`, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new CrpError('corrupt-file', `${file} is not valid JSON: ${describeError(err)}`, {
      cause: err,
      details: { path: file },
    });
  }
}

function entriesOf(json: unknown, file: string): IndexEntry[] {
  const index = json as { format?: unknown; cases?: unknown } | null;
  if (typeof index !== 'object' || index === null || !Array.isArray(index.cases)) {
    throw new CrpError(
      'corrupt-file',
      `${file} has no 'cases' list; expected {format, cases: [{id, kind, file}]}`,
      {
        details: { path: file },
      },
    );
  }
  if (
    index.format !== undefined &&
    !(typeof index.format === 'string' && index.format.startsWith(INDEX_FORMAT))
  ) {
    throw new CrpError(
      'unsupported-format',
      `${file} has format ${JSON.stringify(index.format)}; readable: ${INDEX_FORMAT}<version>`,
      { details: { path: file } },
    );
  }
  const ids = new Set<string>();
  return index.cases.map((raw: unknown, i: number) => {
    const c = raw as Partial<Record<keyof IndexEntry, unknown>> | null;
    if (typeof c?.id !== 'string' || typeof c.kind !== 'string' || typeof c.file !== 'string') {
      throw new CrpError('corrupt-file', `${file}: cases[${i}] needs string fields id, kind and file`, {
        details: { path: file, index: i },
      });
    }
    if (ids.has(c.id)) {
      throw new CrpError('corrupt-file', `${file}: case id '${c.id}' is listed twice`, {
        details: { path: file },
      });
    }
    ids.add(c.id);
    return { id: c.id, kind: c.kind, file: c.file };
  });
}

/**
 * Reads and checks DIR/index.json, the list of the directory's per-file cases (`cases/*.json`). Returns
 * `undefined` for a directory with neither index.json nor cases/ (e.g. one holding only vis/ cases). Throws a
 * {@link CrpError} when index.json is missing although cases/ exists, unreadable, not valid JSON, malformed,
 * names a file that does not exist, or when cases/ holds a JSON file that index.json does not list: a case that
 * silently never runs must not let a run pass.
 */
export async function readCaseIndex(dir: string): Promise<IndexEntry[] | undefined> {
  const indexFile = join(dir, 'index.json');
  const caseFiles = await jsonFilesIn(join(dir, 'cases'));
  const json = await readJson(indexFile, true);
  if (json === undefined) {
    if (caseFiles === undefined) return undefined;
    throw new CrpError(
      'not-found',
      `${dir} has ${caseFiles.length} case files in cases/ but no index.json listing them; add index.json ({format: "${INDEX_FORMAT}1", cases: [{id, kind, file}]})`,
      { details: { path: indexFile } },
    );
  }
  const entries = entriesOf(json, indexFile);
  const listed = new Set(entries.map((e) => normalize(e.file)));
  for (const e of entries) {
    const file = join(dir, e.file);
    try {
      await stat(file);
    } catch (err) {
      throw new CrpError(
        'not-found',
        `${indexFile} lists case '${e.id}' in ${e.file}, which cannot be read`,
        {
          cause: err,
          details: { path: file },
        },
      );
    }
  }
  const unlisted = (caseFiles ?? []).map((n) => join('cases', n)).filter((f) => !listed.has(normalize(f)));
  if (unlisted.length > 0) {
    throw new CrpError(
      'corrupt-file',
      `${dir}: ${unlisted.length} case file(s) not listed in index.json would never run: ${unlisted.join(', ')}; list them in index.json or remove them`,
      { details: { path: dir, unlisted } },
    );
  }
  return entries;
}

/** The cases of `kind` listed by DIR/index.json (none when the directory has no index and no cases/). */
export async function discoverCaseFiles(dir: string, kind: string): Promise<CaseRef[]> {
  const entries = (await readCaseIndex(dir)) ?? [];
  return entries
    .filter((e) => e.kind === kind)
    .map((e) => {
      const file = join(dir, e.file);
      return { id: e.id, kind, file, load: () => readJson(file, false) };
    });
}

/**
 * The cases of `kind` bundled in one JSON file `{cases: [{id, ...}]}` under DIR (e.g. `vis/vis_golden.json`,
 * `region/region_golden.json`). No file: no cases; an unreadable or malformed file throws a {@link CrpError}.
 */
export async function discoverBundledCases(dir: string, bundle: string, kind: string): Promise<CaseRef[]> {
  const file = join(dir, bundle);
  const json = (await readJson(file, true)) as { cases?: unknown } | undefined;
  if (json === undefined) return [];
  if (typeof json !== 'object' || json === null || !Array.isArray(json.cases)) {
    throw new CrpError('corrupt-file', `${file} has no 'cases' list; expected {cases: [{id, ...}]}`, {
      details: { path: file },
    });
  }
  return json.cases.map((c: unknown, i: number) => {
    const id = (c as { id?: unknown } | null)?.id;
    if (typeof id !== 'string') {
      throw new CrpError('corrupt-file', `${relative(dir, file)}: cases[${i}] has no string id`, {
        details: { path: file, index: i },
      });
    }
    return { id, kind, file, load: async () => c };
  });
}
