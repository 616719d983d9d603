// Size measurements of the monorepo (issue 20, deliverable 8): non-test source lines per package, names
// exported by each entry point (values and type-only), and the longest functions. Run from the repository
// root: `node scripts/house-metrics.mjs [--json]`. Reads source with the TypeScript compiler API; builds nothing.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';

const root = process.cwd();
const ts = createRequire(join(root, 'package.json'))('typescript');
const packagesDir = join(root, 'packages');

/** Every .ts/.tsx file below `dir`, skipping tests, declarations, dist and node_modules. */
function sourceFiles(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name === 'node_modules' || name === 'dist' || name === 'test' || name === '__tests__') continue;
      out.push(...sourceFiles(path));
    } else if (/\.tsx?$/.test(name) && !/\.(test|spec|d)\.tsx?$/.test(name)) out.push(path);
  }
  return out.sort();
}

/** The source file behind an `exports` entry (`./dist/node.js` -> `src/node.ts`). */
function entrySource(pkgDir, target) {
  const file = typeof target === 'string' ? target : (target?.import ?? target?.default);
  if (typeof file !== 'string') return undefined;
  const src = join(pkgDir, file.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts'));
  return existsSync(src) ? src : undefined;
}

const packages = readdirSync(packagesDir)
  .filter((name) => existsSync(join(packagesDir, name, 'package.json')))
  .sort();
const lines = {};
const entries = [];
const allFiles = [];
for (const name of packages) {
  const dir = join(packagesDir, name);
  const files = sourceFiles(join(dir, 'src'));
  allFiles.push(...files);
  lines[name] = files.reduce((n, f) => n + readFileSync(f, 'utf8').split('\n').length - 1, 0);
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  for (const [key, target] of Object.entries(manifest.exports ?? {})) {
    const src = entrySource(dir, target);
    if (src && key !== './package.json') entries.push({ entry: `${manifest.name}${key.slice(1)}`, src });
  }
}

const program = ts.createProgram(
  entries.map((e) => e.src),
  {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    allowJs: false,
    noEmit: true,
    skipLibCheck: true,
  },
);
const checker = program.getTypeChecker();
const exportCounts = {};
for (const { entry, src } of entries) {
  const sf = program.getSourceFile(src);
  const moduleSymbol = sf && checker.getSymbolAtLocation(sf);
  if (!moduleSymbol) continue;
  let values = 0;
  let types = 0;
  for (const symbol of checker.getExportsOfModule(moduleSymbol)) {
    const resolved = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    // a name exported with `export type` or naming only a type is type-only; anything with a value counts as one
    const typeOnly =
      symbol.declarations?.some((d) => ts.isTypeOnlyImportOrExportDeclaration?.(d)) ||
      !(resolved.flags & ts.SymbolFlags.Value);
    if (typeOnly) types++;
    else values++;
  }
  exportCounts[entry] = { values, types, total: values + types };
}

// longest functions: declarations, methods, constructors, accessors, function expressions and arrow functions
// with a block body, measured from the first to the last line of the node (comments above not counted)
const functions = [];
for (const file of allFiles) {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const visit = (node) => {
    if (
      ts.isFunctionDeclaration(node) ||
      ts.isMethodDeclaration(node) ||
      ts.isConstructorDeclaration(node) ||
      ts.isGetAccessor(node) ||
      ts.isSetAccessor(node) ||
      ts.isFunctionExpression(node) ||
      (ts.isArrowFunction(node) && ts.isBlock(node.body))
    ) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      let name = node.name?.getText(sf);
      if (!name && ts.isVariableDeclaration(node.parent)) name = node.parent.name.getText(sf);
      if (!name && ts.isPropertyAssignment(node.parent)) name = node.parent.name.getText(sf);
      functions.push({
        name: name ?? '(anonymous)',
        file: relative(root, file),
        line: start + 1,
        lines: end - start + 1,
      });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
}
functions.sort((a, b) => b.lines - a.lines);

if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ lines, exports: exportCounts, longest: functions.slice(0, 25) }, null, 2));
} else {
  console.log('non-test source lines per package');
  for (const [name, n] of Object.entries(lines)) console.log(`  ${name.padEnd(22)} ${String(n).padStart(6)}`);
  console.log(
    `  ${'total'.padEnd(22)} ${String(Object.values(lines).reduce((a, b) => a + b, 0)).padStart(6)}`,
  );
  console.log('names exported per entry point (values + type-only = total)');
  for (const [entry, c] of Object.entries(exportCounts))
    console.log(
      `  ${entry.padEnd(26)} ${String(c.values).padStart(4)} + ${String(c.types).padStart(4)} = ${String(c.total).padStart(4)}`,
    );
  console.log('longest functions (lines from signature to closing brace)');
  for (const f of functions.slice(0, 20))
    console.log(`  ${String(f.lines).padStart(4)}  ${f.name}  ${f.file}:${f.line}`);
  console.log(`functions over 60 lines: ${functions.filter((f) => f.lines > 60).length}`);
}
