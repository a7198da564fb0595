import { defineConfig } from "vitest/config";

// Two projects: `unit` (no root) and `integration` (root, throwaway netns).
//   npx vitest run --project unit
//   npx vitest run --project integration     (as root)
// Integration files run at most 2 at a time (2 cores); tests inside a file run in sequence.
export default defineConfig({
  test: {
    maxWorkers: 2,
    minWorkers: 1,
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          environment: "node",
          pool: "threads",
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          environment: "node",
          pool: "forks",
          globalSetup: ["test/integration/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          sequence: { concurrent: false },
        },
      },
    ],
  },
});
