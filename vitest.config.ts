import { configDefaults, defineConfig, type TestProjectInlineConfiguration } from "vitest/config";

const ALL = ["packages/*/src/**/*.test.ts", "packages/*/test/**/*.test.ts"];
/** The integration suite; the unit tests under src/ touch no store. */
const INTEGRATION = ["packages/*/test/**/*.test.ts"];

/**
 * `npm test` runs everything on SQLite. With DATABASE_URL set it also runs the integration
 * suite on PostgreSQL (the "postgres" project); `npm run test:pg` (FRAMEGATE_TEST_PG=1) runs
 * only that project, on DATABASE_URL or else on a throwaway server (pg-global-setup.ts), with
 * media in S3 (an s3rver bucket the same setup starts).
 */
const pgOnly = process.env.FRAMEGATE_TEST_PG === "1";
const withPg = pgOnly || Boolean(process.env.DATABASE_URL);

/**
 * Left out of the PostgreSQL pass (CI time): suites that reach the store only through the HTTP
 * API as a client would (the SDK, the CLI's client commands, the README's examples, the packed
 * packages), whose server-side paths the server suites run on PostgreSQL. The CLI commands that
 * open the store themselves (cli, usage, stats) stay. FRAMEGATE_TEST_PG_ALL=1 runs them all.
 */
const CLIENT_ONLY = [
  "packages/sdk/test/**",
  ...[
    "api",
    "cancel",
    "demo",
    "env-file",
    "files",
    "outage",
    "pack-checks",
    "packages",
    "parity",
    "startup",
    "units",
    "watch",
  ].map((name) => `packages/cli/test/${name}.test.ts`),
  "packages/server/test/readme-examples.test.ts",
  // The real-browser tests check the pages' side (rendering, CSP, accessibility, cookies).
  "packages/server/test/*-browser.test.ts",
];

const sqlite: TestProjectInlineConfiguration = { extends: true, test: { name: "sqlite", include: ALL } };
const postgres: TestProjectInlineConfiguration = {
  extends: true,
  test: {
    name: "postgres",
    include: INTEGRATION,
    exclude: [...configDefaults.exclude, ...(process.env.FRAMEGATE_TEST_PG_ALL === "1" ? [] : CLIENT_ONLY)],
    globalSetup: ["packages/server/test/pg-global-setup.ts"],
    // The scale-out combination: PostgreSQL and S3 (an s3rver bucket the global setup starts).
    env: { FRAMEGATE_TEST_STORE: "postgres", FRAMEGATE_TEST_STORAGE: "s3" },
  },
};

export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Every response a test server sends is checked against the OpenAPI document.
    setupFiles: ["packages/server/test/conformance-setup.ts"],
    // The CLI children tests start never read a developer's .env in the repository (env-file.ts).
    env: { FRAMEGATE_ENV_FILE: "none" },
    // Projects inherit (and would add to) a top-level include, so it is set per project.
    ...(withPg ? { projects: pgOnly ? [postgres] : [sqlite, postgres] } : { include: ALL }),
  },
});
