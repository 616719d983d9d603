import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { entryPointApis } from '../../../scripts/public-api.mjs';

// The README's "Public API" section lists what each entry point exports: a name added to the code is added there,
// plumbing stays out (unexported, or under ./internal).
describe('public API', () => {
  for (const api of entryPointApis(fileURLToPath(new URL('..', import.meta.url)))) {
    it(`${api.entry} exports exactly the names its README lists`, () => {
      expect(api.listed.length).toBeGreaterThan(0);
      expect(api.exported).toEqual(api.listed);
    });
  }
});
