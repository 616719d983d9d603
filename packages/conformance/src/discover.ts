import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CaseRef } from './types.js';

interface IndexFile {
  cases?: { id: string; kind: string; file: string }[];
}

/** Finds the cases of `kind` in a reference directory: through its index.json when present, otherwise by
 * reading the `kind` of every JSON file under cases/. */
export async function discoverCaseFiles(dir: string, kind: string): Promise<CaseRef[]> {
  const load = (file: string) => async () => JSON.parse(await readFile(file, 'utf8')) as unknown;
  let index: IndexFile | undefined;
  try {
    index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as IndexFile;
  } catch {
    index = undefined;
  }
  if (index?.cases) {
    return index.cases
      .filter((c) => c.kind === kind)
      .map((c) => ({ id: c.id, kind, file: join(dir, c.file), load: load(join(dir, c.file)) }));
  }
  let names: string[];
  try {
    names = (await readdir(join(dir, 'cases'))).filter((n) => n.endsWith('.json')).sort();
  } catch {
    return [];
  }
  const refs: CaseRef[] = [];
  for (const name of names) {
    const file = join(dir, 'cases', name);
    const json = JSON.parse(await readFile(file, 'utf8')) as { id?: string; kind?: string };
    if (json.kind === kind)
      refs.push({ id: json.id ?? name.replace(/\.json$/, ''), kind, file, load: load(file) });
  }
  return refs;
}
