import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { entryPointApis, publishedDependencies } from '../../../scripts/public-api.mjs';

// The README's "Public API" section lists what each entry point exports: a name added to the code is added there,
// plumbing stays out (unexported, or under ./internal).
const dir = fileURLToPath(new URL('..', import.meta.url));

describe('public API', () => {
  it('needs none of the private development tooling (@crp/testing) at run time', () => {
    expect(publishedDependencies(dir)).not.toContain('@crp/testing');
  });

  for (const api of entryPointApis(dir)) {
    it(`${api.entry} exports exactly the names its README lists`, () => {
      expect(api.listed.length).toBeGreaterThan(0);
      expect(api.exported).toEqual(api.listed);
    });
  }
});
