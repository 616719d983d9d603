import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // the JSON report feeds the repository-wide 'N passed, M failed' line (scripts/test.mjs)
    reporters: ['default', 'json'],
    outputFile: { json: 'test-artifacts/vitest.json' },
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    // wasm backend initialisation is per worker; few workers on a 2-core machine
    pool: 'forks',
    maxWorkers: 2,
  },
});
