import { defineConfig } from 'vitest/config';

// Unit tests run in parallel. End-to-end tests boot real TCG guests; on a 2-core
// machine two guests at once slow each other badly, so e2e files run one at a time
// with generous deadlines.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 900_000,
          hookTimeout: 900_000,
          globalSetup: ['test/e2e/global-setup.ts'],
        },
      },
    ],
  },
});
