import { CrpError, describeError } from '@crp/common';
import { joinPath, normalizeRelative, type ReferenceFiles, relativeTo } from './reference-files.js';
import type { CaseRef } from './types.js';

/** One case listed by a reference directory's index.json. */
export interface IndexEntry {
  id: string;
  kind: string;
  /** Path of the case file, relative to the directory. */
  file: string;
}

const INDEX_FORMAT = 'lrp-golden-index/';

async function jsonFilesIn(files: ReferenceFiles, dir: string): Promise<string[] | undefined> {
  return (await files.list(dir))?.filter((n) => n.endsWith('.json')).sort();
}

/** Reads and parses a JSON file of the reference data; a missing file gives `undefined` when `optional`. */
export async function readJson(files: ReferenceFiles, file: string, optional: boolean): Promise<unknown> {
  const text = await files.readText(file);
  if (text === undefined) {
    if (optional) return undefined;
    throw new CrpError('not-found', `cannot read ${file}: it does not exist`, { details: { path: file } });
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
export async function readCaseIndex(dir: string, files: ReferenceFiles): Promise<IndexEntry[] | undefined> {
  const indexFile = joinPath(dir, 'index.json');
  const caseFiles = await jsonFilesIn(files, joinPath(dir, 'cases'));
  const json = await readJson(files, indexFile, true);
  if (json === undefined) {
    if (caseFiles === undefined) return undefined;
    throw new CrpError(
      'not-found',
      `${dir} has ${caseFiles.length} case files in cases/ but no index.json listing them; add index.json ({format: "${INDEX_FORMAT}1", cases: [{id, kind, file}]})`,
      { details: { path: indexFile } },
    );
  }
  const entries = entriesOf(json, indexFile);
  const listed = new Set(entries.map((e) => normalizeRelative(e.file)));
  for (const e of entries) {
    const file = joinPath(dir, e.file);
    if (!(await files.exists(file))) {
      throw new CrpError(
        'not-found',
        `${indexFile} lists case '${e.id}' in ${e.file}, which cannot be read`,
        {
          details: { path: file },
        },
      );
    }
  }
  const unlisted = (caseFiles ?? [])
    .map((n) => `cases/${n}`)
    .filter((f) => !listed.has(normalizeRelative(f)));
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
export async function discoverCaseFiles(
  dir: string,
  files: ReferenceFiles,
  kind: string,
): Promise<CaseRef[]> {
  const entries = (await readCaseIndex(dir, files)) ?? [];
  return entries
    .filter((e) => e.kind === kind)
    .map((e) => {
      const file = joinPath(dir, e.file);
      return { id: e.id, kind, file, dir, files, load: () => readJson(files, file, false) };
    });
}

/**
 * The cases of `kind` bundled in one JSON file `{cases: [{id, ...}]}` under DIR (e.g. `vis/vis_golden.json`,
 * `region/region_golden.json`). No file: no cases; an unreadable or malformed file throws a {@link CrpError}.
 */
export async function discoverBundledCases(
  dir: string,
  files: ReferenceFiles,
  bundle: string,
  kind: string,
): Promise<CaseRef[]> {
  const file = joinPath(dir, bundle);
  const json = (await readJson(files, file, true)) as { cases?: unknown } | undefined;
  if (json === undefined) return [];
  if (typeof json !== 'object' || json === null || !Array.isArray(json.cases)) {
    throw new CrpError('corrupt-file', `${file} has no 'cases' list; expected {cases: [{id, ...}]}`, {
      details: { path: file },
    });
  }
  return json.cases.map((c: unknown, i: number) => {
    const id = (c as { id?: unknown } | null)?.id;
    if (typeof id !== 'string') {
      throw new CrpError('corrupt-file', `${relativeTo(dir, file)}: cases[${i}] has no string id`, {
        details: { path: file, index: i },
      });
    }
    return { id, kind, file, dir, files, load: async () => c };
  });
}
