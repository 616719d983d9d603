import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    // wasm backend initialisation is per worker; few workers on a 2-core machine
    pool: 'forks',
    maxWorkers: 2,
  },
});
