import { defineConfig, type ViteUserConfig } from 'vitest/config';

/**
 * The test configuration every package shares: tests in test/, few workers on a 2-core machine (each
 * initialises its own wasm backend), and a JSON report that scripts/test.mjs sums into the repository's
 * "N passed, M failed" line.
 */
export function packageTestConfig(overrides: { testTimeout?: number } = {}): ViteUserConfig {
  return defineConfig({
    test: {
      include: ['test/**/*.test.ts'],
      testTimeout: overrides.testTimeout ?? 120_000,
      // set-up hooks train small models or build fixtures: on 2 busy cores they can take far over vitest's 10 s
      hookTimeout: 120_000,
      pool: 'forks',
      maxWorkers: 2,
      reporters: ['default', 'json'],
      outputFile: { json: 'test-artifacts/vitest.json' },
    },
  });
}
