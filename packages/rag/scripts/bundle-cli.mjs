#!/usr/bin/env node
/**
 * Bundles the `crp-rag` command (dist/node/cli-main.js, as tsc built it) into dist/bin/crp-rag.js, the
 * package's `bin`. Node resolves, reads and links every module of an unbundled CLI on each start, and loads the
 * CommonJS stemmers, stop-word lists and UMAP through its ES-module translators (a syntax probe and an export
 * scan of each, ~0.9 MB of source): together about a third of a second of CPU per `crp-rag ask`. One file
 * parses once. Heavy optional packages (TF.js, pdf.js, llamaindex, Chroma, Transformers.js, node-llama-cpp)
 * stay external and load only where the code imports them lazily (code splitting keeps those imports lazy);
 * the GPL dictionary package stays external (data, read from its own files).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { keepSnowballLanguages } from './snowball-languages.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// small pure-JS packages the plain-text `ask` needs at start; every other package stays external
const BUNDLED = /^(@crp\/common|snowball-stemmers|stopword|umap-js|ml-[\w-]+|is-any-array)(\/|$)/;
// stopword's CommonJS build (its `main`) is one 320 KB module holding the lists of 62 languages; its ES-module
// source (`module`, one file per language) lets the bundle keep only the English and German lists we import
const stopwordSource = createRequire(import.meta.url).resolve('stopword/src/stopword.js');

await build({
  absWorkingDir: root,
  entryPoints: { 'crp-rag': 'dist/node/cli-main.js' },
  outdir: 'dist/bin',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // bundled CommonJS may `require` Node's own modules
  banner: {
    js: "import { createRequire as __crpCreateRequire } from 'node:module';\nconst require = __crpCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
  plugins: [
    {
      name: 'external-packages',
      setup(b) {
        b.onResolve({ filter: /^stopword$/ }, () => ({ path: stopwordSource }));
        // only the English and German stemmers (see snowball-languages.mjs)
        b.onLoad({ filter: /[\\/]snowball-stemmers[\\/]snowball-stemmers\.js$/ }, async (args) => ({
          contents: keepSnowballLanguages(await readFile(args.path, 'utf8')),
          loader: 'js',
        }));
        b.onResolve({ filter: /^[^./]/ }, (args) =>
          BUNDLED.test(args.path) ? undefined : { path: args.path, external: true },
        );
      },
    },
  ],
});
