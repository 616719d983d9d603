import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    // the browser test starts Chromium; few workers on a 2-core machine
    pool: 'forks',
    maxWorkers: 2,
  },
});
