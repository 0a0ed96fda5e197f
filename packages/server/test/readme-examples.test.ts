/**
 * The README's shell examples, run the way a reader runs them: every ```sh block of "Using the
 * API" and "Command line" is given to bash (`set -euo pipefail`, so every command must succeed
 * and every variable must be set) against a live server, from a directory laid out like the
 * repository's root. The variables are the README's own: BASE and FRAMEGATE_API_KEY, the ids an
 * example refers to (TASK_ID, FILE_ID, FILE_URL, WEBHOOK_ID, EVENT_ID) and WEBHOOK_URL, here a
 * receiver on 127.0.0.1 (the server allows it with WEBHOOK_ALLOW_INSECURE_URLS). `npx framegate`
 * runs this checkout's CLI from source.
 *
 * A block that must not run says so just above its fence: `<!-- not-run: reason -->`. Any API
 * error envelope in a block's output fails it unless its expectation names the code, so a wrong
 * path (404), a renamed field (400) or a missing file is caught even where nothing else is checked.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ERROR_STATUS } from "@framegate/contract";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, startTestServer, type TestServer, waitForTask } from "./harness.js";
import { type ProcessResult, runProcess } from "./process-helpers.js";
import { WebhookReceiver } from "./webhook-receiver.js";

/** README_EXAMPLES_FILE: another copy of the README, to see this test fail on a broken example. */
const README = readFileSync(process.env.README_EXAMPLES_FILE ?? join(REPO_ROOT, "README.md"), "utf8");
/** The sections whose shell examples must run. */
const RUN_SECTIONS = ["Using the API", "Command line"];
const CLI = join(REPO_ROOT, "packages/cli/src/main.ts");
const TSX = createRequire(import.meta.url).resolve("tsx");

export interface ShellExample {
  /** The level-2 heading it is under. */
  section: string;
  /** 1-based line of the opening fence. */
  line: number;
  code: string;
  /** The reason of a `<!-- not-run: reason -->` comment right above the fence. */
  notRun?: string;
}

/** The ```sh / ```bash / ```shell blocks of the given level-2 sections of a markdown text. */
export function shellExamples(markdown: string, sections: readonly string[]): ShellExample[] {
  const lines = markdown.split("\n");
  const found: ShellExample[] = [];
  let section = "";
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    const heading = /^## (.+?)\s*$/.exec(line);
    if (heading) section = heading[1] ?? "";
    const fence = /^```(\w*)\s*$/.exec(line);
    if (!fence) continue;
    const end = lines.findIndex((l, j) => j > i && /^```\s*$/.test(l));
    if (end < 0) throw new Error(`README.md:${i + 1}: code block never closed`);
    if (sections.includes(section) && ["sh", "bash", "shell"].includes(fence[1] ?? "")) {
      let above = i - 1;
      while (above >= 0 && (lines[above] ?? "").trim() === "") above--;
      const marker = /^<!--\s*not-run:\s*(.*?)\s*-->$/.exec((lines[above] ?? "").trim());
      found.push({
        section,
        line: i + 1,
        code: lines.slice(i + 1, end).join("\n"),
        ...(marker ? { notRun: marker[1] ?? "" } : {}),
      });
    }
    i = end;
  }
  return found;
}

/** The JSON values printed one after another (curl prints no newline between two answers). */
// biome-ignore lint/suspicious/noExplicitAny: API answers
function jsonValues(text: string): any[] {
  const values: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === "\\") i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = depth > 0;
    else if (ch === "{" || ch === "[") {
      if (depth++ === 0) start = i;
    } else if ((ch === "}" || ch === "]") && depth > 0 && --depth === 0) {
      try {
        values.push(JSON.parse(text.slice(start, i + 1)));
      } catch {
        // Not JSON (a bracket in plain text): skip it.
      }
    }
  }
  return values;
}

/** Every error code of an API error envelope (or a failed task's error) in the text. */
function errorCodes(text: string): string[] {
  return [...text.matchAll(/"error":\s*\{\s*"code":\s*"([a-z_]+)"/g)].map((m) => m[1] ?? "");
}

/** `npx framegate …` is this checkout's CLI, from source; any other npx call fails the example. */
const PRELUDE = `set -euo pipefail
npx() {
  if [ "\${1:-}" != framegate ]; then echo "the README examples may only run 'npx framegate', not: npx $*" >&2; return 127; fi
  shift
  "$README_TEST_NODE" --conditions=source --import "$README_TEST_TSX" "$README_TEST_CLI" "$@"
}
`;

function runBash(code: string, env: Record<string, string>, cwd: string): Promise<ProcessResult> {
  // Far above what a block takes (the longest, the CLI's, renders and downloads two videos).
  return runProcess("bash", ["-c", `${PRELUDE}${code}\n`], { cwd, env, timeoutMs: 240_000 });
}

interface Expectation {
  /** Picks the README block (exactly one). */
  match: RegExp;
  /** Variables for this block beyond the shared ones (a task still running, a file to delete). */
  env?: () => Promise<Record<string, string>>;
  /** Error codes this block is meant to show. */
  allowErrors?: string[];
  check?: (out: ProcessResult, vars: Record<string, string>) => void | Promise<void>;
}

describe("README examples", () => {
  let t: TestServer;
  let receiver: WebhookReceiver;
  let dir: string;
  const vars: Record<string, string> = {};

  const api = (path: string, init: Parameters<TestServer["request"]>[1] = {}) =>
    t.request(path, { key: vars.FRAMEGATE_API_KEY ?? "", ...init });

  async function upload(): Promise<{ id: string; url: string }> {
    const form = new FormData();
    form.set("kind", "image");
    form.set("model", "kling-2-6");
    form.set("file", new Blob([readFileSync(join(REPO_ROOT, "examples/product.png"))]), "product.png");
    const res = await api("/api/v1/files", { method: "POST", body: form });
    expect(res.status, res.text).toBe(201);
    return { id: res.body.id, url: res.body.url };
  }

  /** A task that stays processing until it is cancelled (or the server stops). */
  async function runningTask(): Promise<string> {
    const res = await api("/api/v1/generations", {
      json: { model: "kling-2-6", prompt: "[sim:delay=120] A lighthouse at dusk" },
    });
    expect(res.status, res.text).toBe(202);
    return res.body.id;
  }

  beforeAll(async () => {
    t = await startTestServer({ WEBHOOK_ALLOW_INSECURE_URLS: "true" });
    receiver = await WebhookReceiver.start();
    const { key } = await t.createAccount(5000);
    dir = mkdtempSync(join(tmpdir(), "framegate-readme-"));
    // The examples run from the repository's root: here a scratch directory with its examples/,
    // so the videos they save (boat.mp4, fox.mp4) do not land in the checkout.
    symlinkSync(join(REPO_ROOT, "examples"), join(dir, "examples"));
    mkdirSync(join(dir, "home"));
    Object.assign(vars, {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: join(dir, "home"),
      LANG: "C.UTF-8",
      BASE: t.url,
      FRAMEGATE_API_KEY: key,
      FRAMEGATE_BASE_URL: t.url,
      FRAMEGATE_CONFIG: join(dir, "home", "framegate.json"),
      WEBHOOK_URL: receiver.at("/readme"),
      README_TEST_NODE: process.execPath,
      README_TEST_TSX: TSX,
      README_TEST_CLI: CLI,
    });

    const endpoint = await api("/api/v1/webhooks", { json: { url: receiver.at("/fixture") } });
    expect(endpoint.status, endpoint.text).toBe(201);
    vars.WEBHOOK_ID = endpoint.body.id;
    const created = await api("/api/v1/generations", {
      json: { model: "kling-2-6", prompt: "A paper boat drifting down a rainy street", client_request_id: "order-123" },
    });
    expect(created.status, created.text).toBe(202);
    vars.TASK_ID = created.body.id;
    expect((await waitForTask(t, key, created.body.id)).status).toBe("succeeded");
    await receiver.waitUntil((r) => r.requests.length > 0, 30_000, "the fixture task's event");
    const events = await api("/api/v1/webhook-events");
    vars.EVENT_ID = events.body.data[0].id;
    const file = await upload();
    vars.FILE_ID = file.id;
    vars.FILE_URL = file.url;
  }, 120_000);

  afterAll(async () => {
    await t?.close();
    await receiver?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const examples = shellExamples(README, RUN_SECTIONS);

  const expectations: Expectation[] = [
    {
      match: /"prompt":"A cinematic product reveal/,
      check: ({ stdout }) => {
        const [task] = jsonValues(stdout);
        expect(task).toMatchObject({ object: "generation", status: "queued", reserved_credits: 55 });
        expect(task.id).toMatch(/^task_/);
        expect(task.params).toEqual({ duration: "5", sound: "false", aspect_ratio: "1:1" });
      },
    },
    {
      match: /Idempotency-Key: order-123-video/,
      check: ({ stdout }) => {
        const [task] = jsonValues(stdout);
        expect(task.params).toEqual({ duration: "10", sound: "true", aspect_ratio: "16:9" });
        expect(task.client_request_id).toBe("order-123");
      },
    },
    {
      match: /^curl -s \$BASE\/api\/v1\/generations\/\$TASK_ID -H "Authorization: Bearer \$FRAMEGATE_API_KEY"$/m,
      check: ({ stdout }, v) => {
        const [task] = jsonValues(stdout);
        expect(task).toMatchObject({ id: v.TASK_ID, status: "succeeded", final_credits: 55 });
        expect(task.result.primary_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/media\/results\//);
      },
    },
    {
      match: /generations\?limit=5&status=succeeded/,
      check: ({ stdout }) => {
        const [list] = jsonValues(stdout);
        expect(list.object).toBe("list");
        expect(list.data.length).toBeGreaterThan(0);
        for (const task of list.data) expect(task.status).toBe("succeeded");
      },
    },
    {
      match: /generations\?client_request_id=order-123/,
      check: ({ stdout }) => {
        const [list] = jsonValues(stdout);
        expect(list.data.length).toBeGreaterThan(0);
        for (const task of list.data) expect(task.client_request_id).toBe("order-123");
      },
    },
    {
      match: /\/api\/v1\/credits -H/,
      check: ({ stdout }) => expect(jsonValues(stdout)[0]).toEqual({ current_credits: expect.any(Number) }),
    },
    {
      match: /\$TASK_ID\/events/,
      check: ({ stdout }, v) => {
        // The task has succeeded: the stream gives that state and ends.
        expect(stdout).toMatch(/^id: 3$/m);
        const data = /^data: (.*)$/m.exec(stdout)?.[1] ?? "";
        expect(JSON.parse(data)).toMatchObject({ id: v.TASK_ID, status: "succeeded" });
      },
    },
    {
      match: /Prefer: wait=30/,
      check: ({ stdout }, v) => {
        expect(stdout).toMatch(/^HTTP\/1\.1 200 OK/);
        expect(jsonValues(stdout)[0]).toMatchObject({ id: v.TASK_ID, status: "succeeded" });
      },
    },
    {
      match: /\$TASK_ID\/cancel/,
      env: async () => ({ TASK_ID: await runningTask() }),
      allowErrors: ["generation_failed"],
      check: ({ stdout }, v) => {
        const [task] = jsonValues(stdout);
        expect(task).toMatchObject({ id: v.TASK_ID, status: "failed", final_credits: 0 });
        expect(task.error.reason).toBe("canceled");
      },
    },
    {
      match: /file=@examples\/product\.png/,
      check: ({ stdout }) => {
        const [file] = jsonValues(stdout);
        expect(file).toMatchObject({ object: "file", kind: "image", mime_type: "image/png", width: 640, height: 480 });
      },
    },
    {
      match: /"url":"\$FILE_URL"/,
      check: ({ stdout }, v) => {
        const [task] = jsonValues(stdout);
        expect(task).toMatchObject({ object: "generation", status: "queued" });
        expect(task.references).toMatchObject([{ file_id: v.FILE_ID, kind: "image", width: 640, height: 480 }]);
      },
    },
    {
      match: /files\?kind=image&limit=50/,
      env: async () => ({ FILE_ID: (await upload()).id }),
      check: ({ stdout }, v) => {
        const [list, deleted] = jsonValues(stdout);
        expect(list.data.map((f: { id: string }) => f.id)).toContain(v.FILE_ID);
        expect(deleted).toMatchObject({ id: v.FILE_ID, deleted: true, storage: "removed" });
      },
    },
    {
      match: /"name":"Production webhook"/,
      check: ({ stdout }, v) => {
        const [endpoint] = jsonValues(stdout);
        expect(endpoint).toMatchObject({ object: "webhook_endpoint", url: v.WEBHOOK_URL, status: "active" });
        expect(endpoint.signing_secret).toMatch(/^whsec_/);
      },
    },
    {
      match: /"params":\{"duration":"7"\}/,
      allowErrors: ["validation_failed"],
      check: ({ stdout }) => {
        const [answer] = jsonValues(stdout);
        expect(answer.error).toMatchObject({ code: "validation_failed" });
        expect(answer.error.details).toEqual([{ path: "params.duration", issue: 'must be one of "5", "10"' }]);
      },
    },
    {
      match: /credits\/ledger\?type=reserve,refund/,
      check: ({ stdout }) => {
        const [ledger, usage] = jsonValues(stdout);
        expect(ledger.object).toBe("list");
        expect(usage.object).toBe("usage");
      },
    },
    {
      match: /npx framegate login/,
      check: async ({ stdout }) => {
        for (const video of ["boat.mp4", "fox.mp4"]) {
          const bytes = readFileSync(join(dir, video));
          expect(bytes.subarray(4, 8).toString("latin1"), video).toBe("ftyp");
        }
        expect(stdout).toContain(join(dir, "boat.mp4"));
        // `webhooks test` reached the receiver.
        await receiver.waitUntil(
          (r) => r.bodies().some((b) => b.type === "webhook.test"),
          10_000,
          "the webhook.test event",
        );
      },
    },
    {
      match: /^npx framegate cancel \$TASK_ID$/m,
      env: async () => ({ TASK_ID: await runningTask(), FILE_ID: (await upload()).id }),
      check: async (_out, v) => {
        const task = await api(`/api/v1/generations/${v.TASK_ID}`);
        expect(task.body.error.reason).toBe("canceled");
        expect((await api(`/api/v1/files/${v.FILE_ID}`)).status).toBe(404);
      },
    },
  ];

  it("finds the examples, and every not-run one says why", () => {
    expect(examples.length).toBeGreaterThanOrEqual(expectations.length);
    for (const example of examples) {
      if (example.notRun !== undefined) expect(example.notRun, `README.md:${example.line}`).not.toBe("");
    }
    // Exceptions stay rare.
    expect(examples.filter((e) => e.notRun !== undefined).length).toBeLessThanOrEqual(2);
  });

  it("each expectation picks exactly one example", () => {
    for (const expectation of expectations) {
      const picked = examples.filter((e) => expectation.match.test(e.code));
      expect(
        picked.map((e) => e.line),
        String(expectation.match),
      ).toHaveLength(1);
    }
  });

  for (const example of examples.filter((e) => e.notRun === undefined)) {
    const title = `README.md:${example.line} (${example.section}): ${example.code.split("\n")[0]}`;
    it(title, { timeout: 300_000 }, async () => {
      const expectation = expectations.find((e) => e.match.test(example.code));
      const env = { ...vars, ...(await expectation?.env?.()) };
      const out = await runBash(example.code, env, dir);
      expect(out.code, `exit status; stderr:\n${out.stderr}\nstdout:\n${out.stdout}`).toBe(0);
      const unexpected = errorCodes(out.stdout).filter((c) => !expectation?.allowErrors?.includes(c));
      expect(unexpected, out.stdout).toEqual([]);
      await expectation?.check?.(out, env);
    });
  }
});

describe("README error table", () => {
  it("lists every error code the API can send", () => {
    const from = README.indexOf("Errors always use one envelope");
    const section = README.slice(from, README.indexOf("\n### ", from));
    const listed = new Set(
      [...section.matchAll(/^\| `([a-z_]+)`(?: \/ `([a-z_]+)`)*/gm)].flatMap((m) => m[0].match(/[a-z_]+/g) ?? []),
    );
    const missing = Object.keys(ERROR_STATUS).filter((code) => !listed.has(code));
    expect(missing).toEqual([]);
  });
});
