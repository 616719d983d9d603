import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: this file is packages/conformance/{src,dist}/reference-dir.*. */
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The golden reference vectors vendored into the repository (vendor/reference; see its PROVENANCE.md): the
 * directory `pnpm conformance` and the tests read when none is given. */
export function defaultReferenceDir(): string {
  return join(repoRoot, 'vendor', 'reference');
}
