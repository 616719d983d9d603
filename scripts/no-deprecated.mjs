// Refuses the JSDoc deprecation tag in the sources until 1.0: nothing has been released (every package is at 0.0.0), so a
// renamed name needs no alias, and an alias kept "for one release" would be the only release it ever had.
// Part of `pnpm lint`; exits 1 and names each file and line. See docs/guides/glossary.md ("No aliases before 1.0").
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const TAG = ['@', 'deprecated'].join(''); // spelled in two parts so that this file does not match itself
const CODE = /\.(ts|tsx|mts|cts|js|mjs|cjs)$/;

const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard'], { encoding: 'utf8' })
  .split('\n')
  .filter((f) => CODE.test(f) && !f.includes('node_modules/') && !f.includes('/dist/'));
const found = [];
for (const file of files) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    continue; // listed by git but deleted in the working tree
  }
  if (!text.includes(TAG)) continue;
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (!line.includes(TAG)) return;
    found.push(`${file}:${i + 1}: ${line.trim()}`);
  });
}
if (found.length > 0) {
  console.error(
    `${found.length} ${TAG} tag(s): nothing is released before 1.0, so rename without an alias ` +
      `(update the callers, docs and changesets instead):\n${found.map((f) => `  ${f}`).join('\n')}`,
  );
  process.exit(1);
}
console.log(`no ${TAG} tags in ${files.length} source files`);
