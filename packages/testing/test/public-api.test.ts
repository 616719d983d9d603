import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { entryPointApis } from '../../../scripts/public-api.mjs';

// The README's "Public API" section lists what each entry point exports (the package is private, but the suites
// of every other package import it by these names): a name added to the code is added there.
const dir = fileURLToPath(new URL('..', import.meta.url));

describe('public API', () => {
  for (const api of entryPointApis(dir)) {
    it(`${api.entry} exports exactly the names its README lists`, () => {
      expect(api.listed.length).toBeGreaterThan(0);
      expect(api.exported).toEqual(api.listed);
    });
  }
});
