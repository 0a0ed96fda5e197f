/**
 * In-process checks of the pieces a child process without a TTY cannot show: configuration
 * precedence, key masking, the live status line and byte bar on a (fake) TTY, and error text.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ValidationError } from "@framegate/sdk";
import { afterAll, describe, expect, it } from "vitest";
import { configPath, DEFAULT_BASE_URL, maskKey, resolveConfig } from "../src/client-config.js";
import { describeError, formatErrorJson, formatErrorText, Output } from "../src/output.js";
import { buildParams } from "../src/params.js";
import { byteProgress, TaskStatusView } from "../src/progress.js";

const dir = mkdtempSync(join(tmpdir(), "framegate-cli-units-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

class FakeTty {
  isTTY = true;
  columns = 120;
  chunks: string[] = [];
  write(chunk: string) {
    this.chunks.push(chunk);
    return true;
  }
  // cli-progress asks for these.
  cursorTo() {
    return true;
  }
  clearLine() {
    return true;
  }
  clearScreenDown() {
    return true;
  }
  moveCursor() {
    return true;
  }
  get text() {
    return this.chunks.join("");
  }
}

const task = (status: string) => ({ id: "task_abc", status }) as unknown as Parameters<TaskStatusView["update"]>[0];

describe("configuration", () => {
  it("flags > env > config file > default; FRAMEGATE_CONFIG, then XDG_CONFIG_HOME, then ~/.config", async () => {
    const file = join(dir, "config.json");
    writeFileSync(file, JSON.stringify({ baseUrl: "http://config.example:1", apiKey: "rvya_sk_fromconfig" }));
    const env = { FRAMEGATE_CONFIG: file };
    expect(await resolveConfig({}, { FRAMEGATE_CONFIG: join(dir, "none.json") })).toMatchObject({
      baseUrl: DEFAULT_BASE_URL,
      apiKey: undefined,
      sources: { baseUrl: "default", apiKey: "none" },
    });
    expect(await resolveConfig({}, env)).toMatchObject({
      baseUrl: "http://config.example:1",
      apiKey: "rvya_sk_fromconfig",
      sources: { baseUrl: "config", apiKey: "config" },
    });
    const withEnv = {
      ...env,
      FRAMEGATE_BASE_URL: "http://env.example:2/api/v1/",
      FRAMEGATE_API_KEY: "rvya_sk_fromenv",
    };
    expect(await resolveConfig({}, withEnv)).toMatchObject({
      baseUrl: "http://env.example:2",
      apiKey: "rvya_sk_fromenv",
      sources: { baseUrl: "env", apiKey: "env" },
    });
    expect(await resolveConfig({ baseUrl: "https://flag.example", apiKey: "rvya_sk_fromflag" }, withEnv)).toMatchObject(
      { baseUrl: "https://flag.example", apiKey: "rvya_sk_fromflag", sources: { baseUrl: "flag", apiKey: "flag" } },
    );
    await expect(resolveConfig({ baseUrl: "ftp://x" }, env)).rejects.toThrow(/--base-url must be an http\(s\) URL/);
    writeFileSync(join(dir, "broken.json"), "{not json");
    await expect(resolveConfig({}, { FRAMEGATE_CONFIG: join(dir, "broken.json") })).rejects.toThrow(/not valid JSON/);

    expect(configPath({ FRAMEGATE_CONFIG: "/a/b.json", XDG_CONFIG_HOME: "/x" })).toBe("/a/b.json");
    expect(configPath({ XDG_CONFIG_HOME: "/x" })).toBe("/x/framegate/config.json");
    expect(configPath({})).toMatch(/\.config\/framegate\/config\.json$/);
  });

  it("shows at most the key's 12-character prefix", () => {
    const key = `rvya_sk_${"a".repeat(43)}`;
    expect(maskKey(key)).toBe("rvya_sk_aaaa…");
    expect(maskKey("rvya_sk_x")).toBe("rvya…");
  });
});

describe("output", () => {
  it("on a TTY: a redrawn status line, then a final line; plain lines otherwise", () => {
    const tty = new FakeTty();
    const out = new Output({}, tty as unknown as NodeJS.WriteStream);
    expect(out.tty).toBe(true);
    const view = new TaskStatusView(out);
    view.update(task("queued"));
    view.update(task("processing"));
    view.update(task("succeeded"));
    const redraws = tty.text.split("\r\x1b[2K");
    expect(redraws.some((r) => /^. task_abc queued \d+\.\ds$/.test(r))).toBe(true);
    expect(redraws.some((r) => /^. task_abc processing \d+\.\ds$/.test(r))).toBe(true);
    expect(tty.text).toMatch(/✔ task_abc succeeded after \d+\.\ds\n$/);

    const pipe = new FakeTty();
    pipe.isTTY = false;
    const plain = new TaskStatusView(new Output({}, pipe as unknown as NodeJS.WriteStream));
    for (const s of ["queued", "queued", "processing", "processing", "failed"]) plain.update(task(s));
    expect(pipe.text.replace(/\(\d+\.\ds\)/g, "(t)")).toBe(
      "task_abc queued (t)\ntask_abc processing (t)\ntask_abc failed (t)\n",
    );

    const json = new FakeTty();
    const quiet = new TaskStatusView(new Output({ json: true }, json as unknown as NodeJS.WriteStream));
    quiet.update(task("queued"));
    quiet.update(task("succeeded"));
    expect(json.text).toBe("");
  });

  it("on a TTY: a byte progress bar", () => {
    const tty = new FakeTty();
    const bar = byteProgress(new Output({}, tty as unknown as NodeJS.WriteStream), "downloading");
    bar.start(2048);
    bar.update(1024);
    bar.update(2048);
    bar.stop();
    expect(tty.text).toMatch(/downloading █+ 100% 2\.0 KB\/2\.0 KB/);
    const pipe = new FakeTty();
    pipe.isTTY = false;
    const none = byteProgress(new Output({}, pipe as unknown as NodeJS.WriteStream), "downloading");
    none.start(10);
    none.update(10);
    none.stop();
    expect(pipe.text).toBe("");
  });

  it("errors: code, reason, message, request id, details", () => {
    const error = new ValidationError("Invalid request.", {
      status: 400,
      code: "validation_failed",
      requestId: "req_1",
      details: [{ path: "params.duration", issue: "must be one of 5, 10" }],
    });
    const info = describeError(error);
    expect(formatErrorText(info)).toBe(
      "error: validation_failed: Invalid request. [request req_1]\n  - params.duration: must be one of 5, 10",
    );
    expect(JSON.parse(formatErrorJson(info))).toEqual({
      error: {
        code: "validation_failed",
        message: "Invalid request.",
        requestId: "req_1",
        details: [{ path: "params.duration", issue: "must be one of 5, 10" }],
      },
    });
  });

  it("flag values are checked against the catalog", () => {
    expect(buildParams("hi", { duration: "10", sound: true, aspect: "9:16" }).params).toEqual({
      duration: "10",
      sound: "true",
      aspect_ratio: "9:16",
    });
    expect(() => buildParams("hi", { duration: "7" })).toThrow('--duration must be 5 or 10 (got "7")');
    expect(() => buildParams("hi", { aspect: "4:3" })).toThrow("--aspect must be 1:1, 16:9 or 9:16");
    expect(() => buildParams("  ", {})).toThrow("the prompt must not be empty");
    expect(() => buildParams("x".repeat(1001), {})).toThrow("at most 1000 characters");
    expect(() => buildParams("hi", { model: "nope" })).toThrow("--model must be one of: kling-2-6");
  });
});
