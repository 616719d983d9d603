import { builtinModules } from 'node:module';
import path from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const NODE_BUILTINS = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

describe('the root entry point @crp/rag is browser-safe', () => {
  it('bundles for the browser with esbuild without any Node built-in (and /node is where they are)', async () => {
    const seen: { path: string; importer: string }[] = [];
    const result = await build({
      entryPoints: [path.join(import.meta.dirname, '..', 'src', 'index.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
      metafile: true,
      plugins: [
        {
          name: 'record-node-builtins',
          setup(b) {
            b.onResolve({ filter: /.*/ }, (args) => {
              if (NODE_BUILTINS.has(args.path)) {
                seen.push({ path: args.path, importer: path.relative(process.cwd(), args.importer) });
                return { path: args.path, external: true };
              }
              return undefined;
            });
          },
        },
      ],
    });
    expect(result.errors).toEqual([]);
    expect(seen).toEqual([]);
    const inputs = Object.keys(result.metafile!.inputs);
    // nothing of the Node-only parts is pulled in
    expect(
      inputs.filter((f) =>
        /src\/node\/|pdfjs-dist|chromadb|@huggingface|@tensorflow|@llamaindex\/(openai|ollama)/.test(f),
      ),
    ).toEqual([]);
    expect(result.outputFiles![0]!.text).toContain('QueryTranslator');

    // the Node entry does use them, so the check above can fail
    const node = await build({
      entryPoints: [path.join(import.meta.dirname, '..', 'src', 'node.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
      plugins: [
        {
          name: 'externals',
          setup(b) {
            b.onResolve({ filter: /.*/ }, (args) => {
              if (NODE_BUILTINS.has(args.path)) {
                seen.push({ path: args.path, importer: args.importer });
                return { path: args.path, external: true };
              }
              return /^[@a-z]/.test(args.path) && !args.path.startsWith('@crp/')
                ? { path: args.path, external: true }
                : undefined;
            });
          },
        },
      ],
    });
    expect(node.errors).toEqual([]);
    expect(seen.map((s) => s.path)).toContain('node:fs/promises');
  }, 60_000);
});
