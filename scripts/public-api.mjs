// The public API of a package, written down and held to: each package README has a "## Public API" section with
// one "### `@crp/name`" (or "### `@crp/name/node`") heading per entry point of its `exports` map and the names that
// entry point exports in backticks below it. `entryPointApis(dir)` gives, per entry point, the names listed there
// and the names the entry point's source really exports (values and types, through the TypeScript compiler), so a
// package test can compare them; `node scripts/public-api.mjs` compares every package and prints the differences
// (`--print` prints the sections as they would be written). `./internal` entry points are unstable by definition
// and not listed.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ts = createRequire(join(root, 'package.json'))('typescript');

/** The source file behind an `exports` target (`./dist/node.js` -> `src/node.ts`, or a `.ts` target as it is). */
function entrySource(dir, target) {
  const file = typeof target === 'string' ? target : (target?.import ?? target?.default);
  if (typeof file !== 'string') return undefined;
  const src = join(dir, file.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts'));
  return existsSync(src) ? src : undefined;
}

/** The public entry points of the package in `dir`: `{ name: '@crp/x/node', source }`, without `./internal*`. */
export function entryPoints(dir) {
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const out = [];
  for (const [key, target] of Object.entries(manifest.exports ?? {})) {
    if (key === './package.json' || key.startsWith('./internal')) continue;
    const source = entrySource(dir, target);
    if (source !== undefined) out.push({ name: `${manifest.name}${key.slice(1)}`, source });
  }
  return out;
}

/** The runtime dependencies of a published package (none for a private one): what a user installs with it. */
export function publishedDependencies(dir) {
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  if (manifest.private === true) return [];
  return Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies }).sort();
}

/** Names exported by each source file, split into values and type-only names, each sorted. */
export function exportedNames(sources) {
  const program = ts.createProgram(sources, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    noEmit: true,
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  return sources.map((source) => {
    const file = program.getSourceFile(source);
    const module = file && checker.getSymbolAtLocation(file);
    const values = [];
    const types = [];
    for (const symbol of module ? checker.getExportsOfModule(module) : []) {
      const resolved = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
      const typeOnly =
        symbol.declarations?.some((d) => ts.isTypeOnlyImportOrExportDeclaration?.(d)) ||
        !(resolved.flags & ts.SymbolFlags.Value);
      (typeOnly ? types : values).push(symbol.name);
    }
    return { values: values.sort(), types: types.sort() };
  });
}

/** The names listed under each "### `entry`" heading of the README's "## Public API" section. */
export function listedNames(readme) {
  const start = readme.search(/^## Public API\s*$/m);
  if (start < 0) return {};
  const rest = readme.slice(start).split('\n').slice(1);
  const end = rest.findIndex((line) => /^## /.test(line));
  const lines = end < 0 ? rest : rest.slice(0, end);
  const listed = {};
  let current;
  for (const line of lines) {
    const heading = /^### `([^`]+)`/.exec(line);
    if (heading) {
      current = heading[1];
      listed[current] = [];
    } else if (current !== undefined && /^(Values|Types):/.test(line.trim())) {
      for (const m of line.matchAll(/`([A-Za-z_$][\w$]*)`/g)) listed[current].push(m[1]);
    } else if (current !== undefined && /^\s+`/.test(line)) {
      for (const m of line.matchAll(/`([A-Za-z_$][\w$]*)`/g)) listed[current].push(m[1]);
    }
  }
  for (const names of Object.values(listed)) names.sort();
  return listed;
}

/** Per entry point of the package in `dir`: the names its README lists and the names it exports. */
export function entryPointApis(dir) {
  const entries = entryPoints(dir);
  const readmePath = join(dir, 'README.md');
  const listed = listedNames(existsSync(readmePath) ? readFileSync(readmePath, 'utf8') : '');
  const exported = exportedNames(entries.map((e) => e.source));
  return entries.map((e, i) => ({
    entry: e.name,
    listed: listed[e.name] ?? [],
    exported: [...exported[i].values, ...exported[i].types].sort(),
    values: exported[i].values,
    types: exported[i].types,
  }));
}

/** Wraps `names` in backticks, comma-separated, in lines of at most `width` characters. */
function wrap(prefix, names, width = 110) {
  const lines = [];
  let line = prefix;
  for (const [i, name] of names.entries()) {
    const item = `\`${name}\`${i < names.length - 1 ? ',' : ''}`;
    if (line.length + 1 + item.length > width) {
      lines.push(line);
      line = `  ${item}`;
    } else line = line.endsWith(':') || line === '  ' ? `${line} ${item}` : `${line} ${item}`;
  }
  lines.push(line);
  return lines.join('\n');
}

/** The "## Public API" section of a package as it exports today. */
export function apiSection(dir) {
  const parts = [
    '## Public API',
    '',
    'What each entry point exports, and nothing more (`test/public-api.test.ts` holds the entry points to this list;',
    'a name is added here when it is added to the code).',
  ];
  for (const api of entryPointApis(dir)) {
    parts.push('', `### \`${api.entry}\``, '');
    if (api.values.length > 0) parts.push(wrap('Values:', api.values));
    if (api.types.length > 0) parts.push(wrap('Types:', api.types));
  }
  return `${parts.join('\n')}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const packagesDir = join(root, 'packages');
  const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  let failed = 0;
  for (const name of readdirSync(packagesDir).sort()) {
    const dir = join(packagesDir, name);
    if (!existsSync(join(dir, 'package.json')) || (only.length > 0 && !only.includes(name))) continue;
    if (process.argv.includes('--print')) {
      console.log(`=== ${name}\n${apiSection(dir)}`);
      continue;
    }
    for (const api of entryPointApis(dir)) {
      const missing = api.exported.filter((n) => !api.listed.includes(n));
      const stale = api.listed.filter((n) => !api.exported.includes(n));
      if (missing.length + stale.length === 0) continue;
      failed++;
      console.log(
        `${api.entry}: exported but not listed: ${missing.join(', ') || '-'}; listed but not exported: ${stale.join(', ') || '-'}`,
      );
    }
  }
  process.exit(failed > 0 ? 1 : 0);
}
