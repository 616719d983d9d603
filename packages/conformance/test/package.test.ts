import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The manifest names only files the build makes: each `exports` and `bin` target in dist/ has its source in src/.
const dir = fileURLToPath(new URL('..', import.meta.url));
const manifest = JSON.parse(readFileSync(`${dir}package.json`, 'utf8')) as {
  exports: Record<string, string | { import?: string; types?: string }>;
  bin: Record<string, string>;
};

const sourceOf = (target: string) =>
  target.startsWith('./dist/') ? target.replace('./dist/', './src/').replace(/\.(d\.ts|js)$/, '.ts') : target;

describe('package.json', () => {
  it('every exports and bin target has its source', () => {
    const targets = [
      ...Object.values(manifest.exports).flatMap((t) =>
        typeof t === 'string' ? [t] : [t.import, t.types].filter((x): x is string => x !== undefined),
      ),
      ...Object.values(manifest.bin),
    ];
    expect(targets.length).toBeGreaterThan(0);
    for (const target of targets) expect(existsSync(`${dir}${sourceOf(target)}`), target).toBe(true);
  });
});
