/**
 * The packages as others install them: `npm run pack` writes the tarballs, a clean project in the
 * system temp directory (outside the workspace, so nothing resolves to the workspace's packages)
 * installs @framegate/contract, @framegate/sdk and @framegate/cli from them offline, and then
 *   - a strict ESM TypeScript program using the SDK compiles against the shipped declarations and
 *     runs against a live server;
 *   - the CLI works as a bin (`npx framegate --help`, `framegate generate` against that server);
 *   - without @framegate/server (an optional peer) the operator commands say how to get it.
 * A tarball missing a file its manifest points at fails `npm run pack`; one missing a module the
 * code loads fails here. Packaging does not depend on the store, so this runs on SQLite only.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, startTestServer, type TestServer } from "../../server/test/harness.js";
import { cleanEnv, installPacked, manifestOf, packInto, type RunResult, run } from "./packed-project.js";

/** What a client-only user installs: the CLI and the packages it depends on, not the server. */
const CLIENT_PACKAGES = ["@framegate/contract", "@framegate/sdk", "@framegate/cli"];

const CONSUMER = `import { Framegate, NotFoundError, type Task } from "@framegate/sdk";

const client = new Framegate({
  apiKey: process.env.FRAMEGATE_API_KEY,
  baseUrl: process.env.FRAMEGATE_BASE_URL,
  maxRetries: 0,
});

function outcome(task: Task): string {
  switch (task.status) {
    case "succeeded":
      // Narrowed: result is non-null here without ?.
      return \`succeeded \${task.result.primary_url.length > 0}\`;
    case "failed":
      return \`failed \${task.error.code}\`;
    default:
      return task.status;
  }
}

// The shipped types are the catalog's: an invalid duration must not compile (this is never called).
async function invalidDuration() {
  // @ts-expect-error kling-2-6 has no 7-second duration
  await client.generations.create({ model: "kling-2-6", prompt: "x", params: { duration: "7" } });
}
void invalidDuration;

const models = await client.models.list();
const created = await client.generations.create({
  model: "kling-2-6",
  prompt: "A paper boat drifting down a rainy street",
  params: { duration: "5" },
});
const finished = await client.generations.waitFor(created.id, { timeout: 60_000 });
let missing = "";
try {
  await client.generations.retrieve("task_doesnotexist");
} catch (error) {
  if (error instanceof NotFoundError) missing = error.code;
}
console.log(JSON.stringify({ models: models.data.map((m) => m.id), id: created.id, outcome: outcome(finished), missing }));
`;

/** A strict NodeNext project; @types/node comes from the workspace, the SDK from node_modules. */
const TSCONFIG = {
  compilerOptions: {
    strict: true,
    module: "nodenext",
    moduleResolution: "nodenext",
    target: "es2022",
    lib: ["es2023"],
    types: ["node"],
    typeRoots: [join(REPO_ROOT, "node_modules/@types")],
    skipLibCheck: false,
    noEmit: false,
    rootDir: "src",
    outDir: "out",
  },
  include: ["src"],
};

const onPostgres = process.env.FRAMEGATE_TEST_STORE === "postgres";

describe.skipIf(onPostgres)("installable packages", () => {
  let work = "";
  let project = "";
  let tarballs: string[] = [];
  let t: TestServer | undefined;
  let key = "";

  const server = () => {
    if (!t) throw new Error("the test server has not started");
    return t;
  };
  /** The installed CLI through npx, from the project, as a user runs it. */
  const framegate = (args: string[]): Promise<RunResult> =>
    run("npx", ["framegate", ...args], {
      cwd: project,
      env: cleanEnv({
        FRAMEGATE_BASE_URL: server().url,
        FRAMEGATE_API_KEY: key,
        FRAMEGATE_CONFIG: join(work, "no-config", "config.json"),
        LOG_LEVEL: "silent",
        // No registry: a bin that is not installed must fail, not be fetched.
        npm_config_offline: "true",
      }),
      timeoutMs: 60_000,
    });

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "framegate-packages-"));
    project = join(work, "project");
    mkdirSync(project);
    [tarballs, t] = await Promise.all([packInto(join(work, "tarballs")), startTestServer()]);
    ({ key } = await server().createAccount(1000));
    const byName = new Map(
      await Promise.all(tarballs.map(async (file) => [(await manifestOf(file)).name, file] as const)),
    );
    await installPacked(
      project,
      CLIENT_PACKAGES.map((name) => {
        const file = byName.get(name);
        if (!file) throw new Error(`npm run pack wrote no tarball for ${name}`);
        return file;
      }),
    );
  }, 300_000);

  afterAll(async () => {
    await t?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("packs every package with a manifest a registry can install", async () => {
    const manifests = await Promise.all(tarballs.map(manifestOf));
    expect(manifests.map((m) => m.name).sort()).toEqual([
      "@framegate/cli",
      "@framegate/contract",
      "@framegate/sdk",
      "@framegate/server",
    ]);
    for (const m of manifests) {
      // The workspace-only "source" condition would point a consumer's tooling at src/*.ts.
      expect(JSON.stringify(m.exports ?? {}), m.name).not.toContain('"source"');
      expect(m.devDependencies, m.name).toBeUndefined();
      for (const range of Object.values({ ...m.dependencies, ...m.peerDependencies })) {
        expect(range, m.name).not.toMatch(/^(\*|workspace:|file:)/);
      }
    }
  });

  it("compiles a strict ESM TypeScript program against the SDK and runs it against a server", async () => {
    mkdirSync(join(project, "src"), { recursive: true });
    writeFileSync(join(project, "src", "main.ts"), CONSUMER);
    writeFileSync(join(project, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2));
    const tsc = await run(process.execPath, [join(REPO_ROOT, "node_modules/typescript/bin/tsc"), "-p", project], {
      cwd: project,
    });
    expect(tsc.code, tsc.stdout + tsc.stderr).toBe(0);

    const program = await run(process.execPath, [join(project, "out", "main.js")], {
      cwd: project,
      env: cleanEnv({ FRAMEGATE_BASE_URL: server().url, FRAMEGATE_API_KEY: key }),
      timeoutMs: 90_000,
    });
    expect(program.code, program.stderr).toBe(0);
    const summary = JSON.parse(program.stdout);
    expect(summary).toMatchObject({ outcome: "succeeded true", missing: "not_found" });
    expect(summary.models).toContain("kling-2-6");
    const task = await server().request(`/api/v1/generations/${summary.id}`, { key });
    expect(task.status).toBe(200);
    expect(task.body.status).toBe("succeeded");
  });

  it("runs the CLI as a bin: npx framegate --help", async () => {
    const help = await framegate(["--help"]);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: framegate/m);
    expect(help.stdout).toContain("generate");
  });

  it("creates a task with framegate generate against the server", async () => {
    const result = await framegate(["generate", "A fox in the snow", "--duration", "5", "--no-wait", "--json"]);
    expect(result.code, result.stderr).toBe(0);
    const created = JSON.parse(result.stdout);
    expect(created.id).toMatch(/^task_/);
    const task = await server().request(`/api/v1/generations/${created.id}`, { key });
    expect(task.status).toBe(200);
    expect(task.body.id).toBe(created.id);
  });

  it("says how to install @framegate/server when an operator command needs it", async () => {
    for (const command of [["serve"], ["migrate", "--json"]]) {
      const result = await framegate(command);
      expect(result.code, result.stderr).toBe(1);
      expect(result.stderr).toContain("npm i @framegate/server");
      expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
  });
});
