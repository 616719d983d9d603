/**
 * The root entry point of every library package runs in a browser: bundled for the browser, it pulls in no Node
 * built-in (node:fs, worker_threads, child_process, ...), not even through a dependency. Node-only parts sit
 * behind '/node' entry points. The bundles are made from the TypeScript sources (the packages need not be built),
 * with @crp/* resolved to their sources.
 */
import { existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { describe, expect, it } from 'vitest';

const packagesDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The library packages whose root must be browser-safe, and @crp/backend's one browser entry point (its root
 * picks a TF.js backend for Node applications; a page installs the wasm Slice kernel from `/wasm-slice`). Not here:
 * @crp/cli (a Node command), @crp/testing and @crp/conformance (private).
 */
const LIBRARIES = [
  'common',
  'lrp',
  'core',
  'vis',
  'models',
  'attribution',
  'pruning',
  'evaluation',
  'rag',
  'backend/wasm-slice',
];

const nodeBuiltins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Resolves '@crp/x' and '@crp/x/sub' to packages/x/src/index.ts and packages/x/src/sub.ts. */
const workspaceSources: Plugin = {
  name: 'crp-sources',
  setup(b) {
    b.onResolve({ filter: /^@crp\// }, (args) => {
      const [, name, sub] = /^@crp\/([^/]+)(?:\/(.+))?$/.exec(args.path)!;
      const file = join(packagesDir, name!, 'src', `${sub ?? 'index'}.ts`);
      if (!existsSync(file)) return { errors: [{ text: `no source for ${args.path} (${file})` }] };
      return { path: file };
    });
  },
};

/** Records every import of a Node built-in (and who imports it) instead of failing on the first. */
function nodeImports(found: string[]): Plugin {
  return {
    name: 'node-builtins',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        const bare = args.path.startsWith('node:') ? args.path : args.path.split('/')[0]!;
        if (!nodeBuiltins.has(args.path) && !nodeBuiltins.has(bare)) return undefined;
        found.push(`${args.path} (imported by ${args.importer.replace(packagesDir, 'packages')})`);
        return { path: args.path, external: true };
      });
    },
  };
}

/** The Node built-ins that a browser bundle of `entry` would need. */
async function builtinsIn(entry: string): Promise<string[]> {
  const found: string[] = [];
  await build({
    stdin: { contents: `export * from '${entry}';`, resolveDir: packagesDir, loader: 'ts' },
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'esm',
    logLevel: 'silent',
    // native addons (resvg in @crp/vis/node) are not bundled; their JavaScript side shows their Node imports
    loader: { '.node': 'empty' },
    // TF.js is the application's (peer dependency) and runs in browsers
    external: ['@tensorflow/*'],
    plugins: [nodeImports(found), workspaceSources],
  });
  return [...new Set(found)].sort();
}

describe('root entry points are browser-safe', () => {
  it.each(LIBRARIES)('@crp/%s imports no Node built-in, also not transitively', async (name) => {
    expect(await builtinsIn(`@crp/${name}`)).toEqual([]);
  });

  it('and the check finds them where they are: the /node entry points', async () => {
    const found = await builtinsIn('@crp/models/node');
    expect(found.some((f) => f.startsWith('node:fs/promises'))).toBe(true);
    expect(await builtinsIn('@crp/common/node')).toContain(
      'node:fs/promises (imported by packages/common/src/atomic-write.ts)',
    );
  });
});
