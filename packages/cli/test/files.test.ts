/**
 * `framegate files list|get|delete` end to end: the CLI as a child process (no TTY) against a
 * real server in this process; readable text, --json, and errors with their code.
 */
import { describe, expect, it } from "vitest";
import { makeImage } from "../../server/test/fixtures/media.js";
import { cliFixture, DEAD, runCli } from "./helpers.js";

describe("framegate files list, get and delete", () => {
  let png: string;
  const f = cliFixture("files", {
    credits: 0,
    setup: async ({ dir }) => {
      png = await makeImage(dir, { format: "png", width: 400, height: 320 });
    },
  });
  const { env } = f;

  it("lists, shows and deletes files; bad arguments are refused before any request", { timeout: 60_000 }, async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const up = await runCli(["files", "upload", png, "--json"], env());
      expect(up.code, up.stderr).toBe(0);
      ids.push(up.json.id);
    }
    const [newest, middle, oldest] = [...ids].reverse() as [string, string, string];

    const [listText, listJson, page, videos, get, getJson, badKind, badId] = await Promise.all([
      runCli(["files", "list"], env()),
      runCli(["files", "list", "--json"], env()),
      runCli(["files", "list", "--limit", "2"], env()),
      runCli(["files", "list", "--kind", "video"], env()),
      runCli(["files", "get", middle], env()),
      runCli(["files", "get", middle, "--json"], env()),
      runCli(["files", "list", "--kind", "document"], env({ FRAMEGATE_BASE_URL: DEAD })),
      runCli(["files", "delete", "../etc"], env({ FRAMEGATE_BASE_URL: DEAD })),
    ]);

    expect(listText.code, listText.stderr).toBe(0);
    const lines = listText.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID +KIND +TYPE +SIZE +CREATED +EXPIRES +NAME$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual([newest, middle, oldest]);
    expect(lines[1]).toMatch(/image {2}image\/png {2}[\d.]+ (B|KB) 400x320 /);
    expect(listJson.json).toMatchObject({ object: "list", has_more: false });
    expect(listJson.json.data.map((f: { id: string }) => f.id)).toEqual([newest, middle, oldest]);
    expect(page.stdout.trimEnd().split("\n").at(-1)).toBe(
      `… more: framegate files list --limit 2 --starting-after ${middle}`,
    );
    expect(videos.stdout).toBe("no video files\n");

    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toMatch(new RegExp(`^${middle} {2}image {2}image/png {2}[\\d.]+ (B|KB) 400x320\\n`));
    expect(get.stdout).toMatch(/\n {2}url: {5}http/);
    expect(getJson.json).toMatchObject({ id: middle, object: "file", kind: "image", width: 400 });

    expect(badKind.code).toBe(2);
    expect(badKind.stderr).toBe(
      'error: invalid_argument: --kind must be one of image, video, audio (got "document")\n',
    );
    expect(badId.code).toBe(2);
    expect(badId.errorJson?.error?.code ?? badId.stderr).toMatch(/invalid_argument/);

    const deleted = await runCli(["files", "delete", middle], env());
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toBe(`deleted ${middle}\n`);
    const [again, againJson, gone, after] = await Promise.all([
      runCli(["files", "delete", middle], env()),
      runCli(["files", "delete", middle, "--json"], env()),
      runCli(["files", "get", middle], env()),
      runCli(["files", "list", "--json"], env()),
    ]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^error: not_found: File not found\. \[request req_\w+\]$/m);
    expect(againJson.errorJson.error).toMatchObject({ code: "not_found" });
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^error: not_found: /);
    expect(after.json.data.map((f: { id: string }) => f.id)).toEqual([newest, oldest]);
  });

  it("deleting a file a queued task uses says the bytes wait for that task", { timeout: 60_000 }, async () => {
    const rich = await f.t.createAccount(1000);
    const up = await runCli(
      ["files", "upload", png, "--model", "kling-2-6", "--json"],
      env({ FRAMEGATE_API_KEY: rich.key }),
    );
    expect(up.code, up.stderr).toBe(0);
    const created = await f.t.request("/api/v1/generations", {
      key: rich.key,
      json: {
        model: "kling-2-6",
        prompt: "slow [sim:delay=3]",
        params: { referenceMediaItems: [{ url: up.json.url, kind: "image" }] },
      },
    });
    expect(created.status, created.text).toBe(202);
    const deleted = await runCli(["files", "delete", up.json.id], env({ FRAMEGATE_API_KEY: rich.key }));
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toBe(
      `deleted ${up.json.id}; its bytes are kept until the task using it ends (${created.body.id})\n`,
    );
  });
});
