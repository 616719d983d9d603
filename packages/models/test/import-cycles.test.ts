/**
 * The package's modules import each other without cycles (pth.ts and state-dict.ts once imported each other):
 * every relative import of src/, type-only ones included, forms a graph that a depth-first walk finds acyclic.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '..', 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Relative imports and re-exports of a file, as paths of .ts files. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:import|export)\s[^;]*?from\s+'(\.[^']+)\.js'/g)) {
    out.push(join(file, '..', `${m[1]}.ts`));
  }
  return out;
}

/** Every cycle the walk meets, as a list of files (relative to src/). */
function cycles(files: readonly string[], root = SRC): string[][] {
  const graph = new Map(files.map((f) => [f, importsOf(f)]));
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const found: string[][] = [];
  const visit = (f: string) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      found.push([...path.slice(path.indexOf(f)), f].map((p) => relative(root, p)));
      return;
    }
    state.set(f, 'open');
    path.push(f);
    for (const g of graph.get(f) ?? []) visit(g);
    path.pop();
    state.set(f, 'done');
  };
  for (const f of files) visit(f);
  return found;
}

describe('imports of @crp/models', () => {
  it('have no cycles', () => {
    expect(cycles(sources(SRC))).toEqual([]);
  });

  it('the walk finds a cycle where there is one (a type-only import counts)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'crp-cycles-'));
    try {
      writeFileSync(join(dir, 'a.ts'), "import type { B } from './b.js';\nexport interface A { b?: B }\n");
      writeFileSync(
        join(dir, 'b.ts'),
        "import { c } from './c.js';\nexport { type A } from './a.js';\nexport type B = typeof c;\n",
      );
      writeFileSync(join(dir, 'c.ts'), 'export const c = 1;\n');
      expect(cycles(sources(dir), dir)).toEqual([['a.ts', 'b.ts', 'a.ts']]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
