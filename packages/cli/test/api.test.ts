/**
 * The API commands end to end: the CLI runs as a child process without a TTY (stdout and stderr
 * are pipes) against a real server started in this process. Independent invocations run
 * concurrently, since each child start costs a second or so.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probeMp4 } from "../../server/src/media/mp4-probe.js";
import { makeImage, makeTextFile } from "../../server/test/fixtures/media.js";
import { startTestServer, type TestServer } from "../../server/test/harness.js";
import { WebhookReceiver } from "../../server/test/webhook-receiver.js";
import { buildProgram } from "../src/program.js";
import { runCli, TERMINAL_CONTROL } from "./helpers.js";

/** Nothing listens here: a command that reaches the network fails with api_connection_error. */
const DEAD = "http://127.0.0.1:9";
const fakeKey = (c: string) => `rvya_sk_${c.repeat(43)}`;

describe("framegate API commands (no TTY)", () => {
  let t: TestServer;
  let key: string;
  let poorKey: string;
  let dir: string;
  let png: string;
  let queuedId: string;

  /** The child's environment: this server and key, no config file, fast polling. */
  const env = (extra: Record<string, string> = {}) => ({
    FRAMEGATE_BASE_URL: t.url,
    FRAMEGATE_API_KEY: key,
    FRAMEGATE_CONFIG: join(dir, "no-config", "config.json"),
    FRAMEGATE_POLL_INTERVAL_MS: "100",
    ...extra,
  });

  beforeAll(async () => {
    t = await startTestServer({ WEBHOOK_ALLOW_INSECURE_URLS: "true" });
    ({ key } = await t.createAccount(10_000));
    ({ key: poorKey } = await t.createAccount(10));
    dir = mkdtempSync(join(tmpdir(), "framegate-cli-api-"));
    png = await makeImage(dir, { format: "png", width: 640, height: 360 });
  });
  afterAll(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("generate with every flag saves a 9:16 MP4 with sound, in plain lines; --json and --no-wait", {
    timeout: 90_000,
  }, async () => {
    const outText = join(dir, "text", "boat.mp4");
    const outJsonDir = join(dir, "json");
    const flags = ["--duration", "10", "--sound", "--aspect", "9:16", "--image", png];
    const [text, json, queued] = await Promise.all([
      runCli(["generate", "A paper boat drifting [sim:delay=0.6]", ...flags, "--out", outText], env()),
      runCli(["generate", "A paper boat, as JSON", ...flags, "--out", `${outJsonDir}/`, "--json"], env()),
      runCli(["generate", "For later [sim:delay=1]", "--no-wait", "--json"], env()),
    ]);

    // Human output without a TTY: plain lines, one per status change, then the saved path.
    expect(text.code, text.stderr).toBe(0);
    expect(text.stderr).toBe("");
    expect(text.stdout).not.toMatch(TERMINAL_CONTROL);
    const lines = text.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^uploading png-640x360-\w+\.png$/);
    expect(lines[1]).toMatch(/^uploaded png-640x360-\w+\.png as file_\w+ \(640x360, [\d.]+ KB\)$/);
    expect(lines[2]).toMatch(/^created task_\w+ \(duration=10 aspect_ratio=9:16 sound=true; 55 credits reserved\)$/);
    const statuses = lines.map((l) => /^task_\w+ (queued|processing|succeeded|failed) \(\d+\.\ds\)$/.exec(l)?.[1]);
    const seen = statuses.filter(Boolean);
    expect(seen[0]).toBe("queued");
    expect(seen.at(-1)).toBe("succeeded");
    expect(new Set(seen).size).toBe(seen.length);
    expect(lines.at(-2)).toMatch(/^downloading task_\w+ \([\d.]+ KB\)$/);
    expect(lines.at(-1)).toBe(
      `saved ${outText} (${lines.at(-1)?.match(/\(([\d.]+ KB)/)?.[1]}, 144x256, 10 s, with sound)`,
    );
    const info = await probeMp4(outText);
    expect(info).toMatchObject({ width: 144, height: 256, hasAudio: true, videoCodec: "avc1" });
    expect(info.durationSeconds).toBeGreaterThan(9.5);
    // Written under a temporary name, then renamed: nothing else is left in the directory.
    expect(await readdir(dirname(outText))).toEqual(["boat.mp4"]);

    // --json: the final task plus the file, and nothing else on stdout.
    expect(json.code, json.stderr).toBe(0);
    expect(json.json).toMatchObject({
      object: "generation",
      status: "succeeded",
      model: "kling-2-6",
      params: { duration: "10", sound: "true", aspect_ratio: "9:16" },
      references: [{ kind: "image", width: 640, height: 360 }],
    });
    expect(json.json.file).toBe(join(outJsonDir, `${json.json.id}.mp4`));
    expect(json.json.result.media[0]).toMatchObject({ width: 144, height: 256, has_audio: true });
    const jsonInfo = await probeMp4(json.json.file);
    expect(jsonInfo).toMatchObject({ width: 144, height: 256, hasAudio: true });
    expect((await stat(json.json.file)).size).toBe(json.json.result.media[0].size_bytes);

    // --no-wait: the queued task, at once.
    expect(queued.code, queued.stderr).toBe(0);
    expect(queued.json).toMatchObject({ object: "generation", status: "queued", model: "kling-2-6" });
    queuedId = queued.json.id;
  });

  it("failures: a failed generation, insufficient credits, bad flags refused before any request, no key", {
    timeout: 60_000,
  }, async () => {
    const [failText, failJson, poor, poorJson, badDuration, badAspect, missingImage, noKey, notFound] =
      await Promise.all([
        runCli(["generate", "Doomed [sim:fail]"], env()),
        runCli(["generate", "Doomed [sim:fail]", "--json"], env()),
        runCli(["generate", "Too expensive"], env({ FRAMEGATE_API_KEY: poorKey })),
        runCli(["generate", "Too expensive", "--json"], env({ FRAMEGATE_API_KEY: poorKey })),
        runCli(["generate", "x", "--duration", "7"], env({ FRAMEGATE_BASE_URL: DEAD, FRAMEGATE_API_KEY: "" })),
        runCli(["generate", "x", "--aspect", "4:3", "--json"], env({ FRAMEGATE_BASE_URL: DEAD })),
        runCli(["generate", "x", "--image", join(dir, "missing.png")], env({ FRAMEGATE_BASE_URL: DEAD })),
        runCli(["credits"], env({ FRAMEGATE_API_KEY: "" })),
        runCli(["status", "task_doesnotexist", "--json"], env()),
      ]);

    expect(failText.code).toBe(1);
    expect(failText.stdout).toMatch(/^task_\w+ failed \(/m);
    expect(failText.stdout).not.toMatch(TERMINAL_CONTROL);
    expect(failText.stderr).toMatch(/^error: generation_failed \(provider_error\): .+/);
    expect(failJson.code).toBe(1);
    expect(failJson.json).toMatchObject({ status: "failed", error: { code: "generation_failed" } });
    expect(failJson.errorJson.error).toMatchObject({
      code: "generation_failed",
      reason: "provider_error",
      taskId: failJson.json.id,
      requestId: null,
    });

    expect(poor.code).toBe(1);
    expect(poor.stdout).toBe("");
    expect(poor.stderr).toMatch(/^error: insufficient_credits: .+ \[request req_\w+\]$/m);
    expect(poorJson.code).toBe(1);
    expect(poorJson.stdout).toBe("");
    expect(poorJson.errorJson.error).toMatchObject({ code: "insufficient_credits" });
    expect(poorJson.errorJson.error.requestId).toMatch(/^req_/);

    // Refused locally (exit 2), so the dead base URL was never contacted.
    expect(badDuration.code).toBe(2);
    expect(badDuration.stderr).toBe('error: invalid_argument: --duration must be 5 or 10 (got "7")\n');
    expect(badAspect.code).toBe(2);
    expect(badAspect.errorJson.error).toMatchObject({ code: "invalid_argument" });
    expect(badAspect.errorJson.error.message).toMatch(/--aspect must be 1:1, 16:9 or 9:16/);
    expect(missingImage.code).toBe(2);
    expect(missingImage.stderr).toMatch(/--image: .*missing\.png: no such file/);

    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toMatch(/^error: api_key_missing: /);
    expect(noKey.stderr).toMatch(/framegate login/);
    expect(notFound.code).toBe(1);
    expect(notFound.errorJson.error.code).toBe("not_found");
  });

  it("status, wait --out, credits, models and files upload (text and --json)", { timeout: 60_000 }, async () => {
    expect(queuedId).toMatch(/^task_/);
    const waitedPath = join(dir, "waited.mp4");
    const [waited, st, stText, credits, creditsText, models, modelsText, upload, uploadText, badKind] =
      await Promise.all([
        runCli(["wait", queuedId, "--out", waitedPath], env()),
        runCli(["status", queuedId, "--json"], env()),
        runCli(["status", queuedId], env()),
        runCli(["credits", "--json"], env()),
        runCli(["credits"], env()),
        runCli(["models", "--json"], env({ FRAMEGATE_API_KEY: "" })),
        runCli(["models"], env()),
        runCli(["files", "upload", png, "--kind", "image", "--model", "kling-2-6", "--json"], env()),
        runCli(["files", "upload", png], env()),
        runCli(["files", "upload", await makeTextFile(dir)], env({ FRAMEGATE_BASE_URL: DEAD })),
      ]);

    expect(waited.code, waited.stderr).toBe(0);
    expect(waited.stdout).not.toMatch(TERMINAL_CONTROL);
    expect(waited.stdout).toMatch(new RegExp(`^${queuedId} succeeded \\(`, "m"));
    expect(waited.stdout.trimEnd().split("\n").at(-1)).toMatch(
      /^saved .*waited\.mp4 \([\d.]+ KB, 160x160, 5 s, no sound\)$/,
    );
    expect(await probeMp4(waitedPath)).toMatchObject({ width: 160, height: 160, hasAudio: false });

    expect(st.code, st.stderr).toBe(0);
    expect(st.json).toMatchObject({ id: queuedId, object: "generation", model: "kling-2-6" });
    expect(stText.code).toBe(0);
    expect(stText.stdout).toMatch(new RegExp(`^${queuedId}  (queued|processing|succeeded)\\n  model:     kling-2-6`));

    const balance = (await t.request("/api/v1/credits", { key })).body.current_credits;
    expect(credits.code, credits.stderr).toBe(0);
    expect(credits.json).toEqual({ current_credits: balance });
    expect(creditsText.stdout).toBe(`${balance} credits\n`);

    expect(models.code, models.stderr).toBe(0);
    expect(models.json.object).toBe("list");
    expect(models.json.data.map((m: { id: string }) => m.id)).toEqual(["kling-2-6"]);
    expect(modelsText.stdout).toMatch(/^kling-2-6 {2}Kling 2\.6/);
    expect(modelsText.stdout).toMatch(/duration: 5\|10 \(default 5\)/);

    expect(upload.code, upload.stderr).toBe(0);
    expect(upload.json).toMatchObject({
      object: "file",
      kind: "image",
      mime_type: "image/png",
      width: 640,
      height: 360,
    });
    expect(upload.json.id).toMatch(/^file_/);
    expect(uploadText.code).toBe(0);
    expect(uploadText.stdout).toMatch(/^file_\w+ {2}image {2}image\/png {2}[\d.]+ KB, 640x360\n {2}url: {5}http/);
    expect(badKind.code).toBe(2);
    expect(badKind.stderr).toMatch(/cannot tell the kind of .*\.txt.*--kind image\|video\|audio/);
  });

  it("login checks the key, writes the config (0600) that later commands use; flags > env > config", {
    timeout: 60_000,
  }, async () => {
    const cfg = join(dir, "login", "framegate", "config.json");
    const base = {
      FRAMEGATE_CONFIG: cfg,
      FRAMEGATE_API_KEY: "",
      FRAMEGATE_BASE_URL: "",
      FRAMEGATE_POLL_INTERVAL_MS: "",
    };
    const badCfg = join(dir, "bad-login", "config.json");
    const xdg = join(dir, "xdg");

    const [bad, good, piped] = await Promise.all([
      runCli(["login", "--api-key", fakeKey("x"), "--base-url", t.url], { ...base, FRAMEGATE_CONFIG: badCfg }),
      runCli(["login", "--api-key", key, "--base-url", t.url], base),
      // No --api-key and stdin is not a TTY: the key is read from stdin; the path from XDG_CONFIG_HOME.
      runCli(
        ["login", "--json"],
        { ...base, FRAMEGATE_CONFIG: "", XDG_CONFIG_HOME: xdg, FRAMEGATE_BASE_URL: t.url },
        {
          input: `${key}\n`,
        },
      ),
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error: api_key_invalid: /);
    expect(existsSync(badCfg)).toBe(false);

    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toContain(`logged in to ${t.url} with ${key.slice(0, 12)}…`);
    expect(good.stdout).toContain(cfg);
    expect((await stat(cfg)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(cfg, "utf8"))).toEqual({ baseUrl: t.url, apiKey: key });

    expect(piped.code, piped.stderr).toBe(0);
    const xdgCfg = join(xdg, "framegate", "config.json");
    expect(piped.json).toMatchObject({ baseUrl: t.url, keyPrefix: `${key.slice(0, 12)}…`, configPath: xdgCfg });
    expect((await stat(xdgCfg)).mode & 0o777).toBe(0o600);
    for (const r of [bad, good, piped]) expect(r.stdout + r.stderr).not.toContain(key);

    const [fromConfig, envBeatsConfig, flagBeatsEnv, keyFlagBeatsConfig, fromXdg] = await Promise.all([
      runCli(["credits", "--json"], base),
      runCli(["credits", "--json"], { ...base, FRAMEGATE_BASE_URL: DEAD }),
      runCli(["credits", "--json", "--base-url", t.url], { ...base, FRAMEGATE_BASE_URL: DEAD }),
      runCli(["credits", "--json", "--api-key", fakeKey("y")], base),
      runCli(["credits", "--json"], { ...base, FRAMEGATE_CONFIG: "", XDG_CONFIG_HOME: xdg }),
    ]);
    expect(fromConfig.code, fromConfig.stderr).toBe(0);
    expect(fromConfig.json.current_credits).toEqual(expect.any(Number));
    expect(envBeatsConfig.code).toBe(1);
    expect(envBeatsConfig.errorJson.error.code).toBe("api_connection_error");
    expect(flagBeatsEnv.code, flagBeatsEnv.stderr).toBe(0);
    expect(keyFlagBeatsConfig.code).toBe(1);
    expect(keyFlagBeatsConfig.errorJson.error.code).toBe("api_key_invalid");
    expect(fromXdg.code, fromXdg.stderr).toBe(0);

    const logout = await runCli(["logout"], base);
    expect(logout.code).toBe(0);
    expect(existsSync(cfg)).toBe(false);
  });

  it("webhooks create, list, test and deliveries", { timeout: 60_000 }, async () => {
    const receiver = await WebhookReceiver.start();
    try {
      const created = await runCli(
        [
          "webhooks",
          "create",
          "--url",
          receiver.at("/hook"),
          "--name",
          "ci",
          "--events",
          "generation.failed",
          "--json",
        ],
        env(),
      );
      expect(created.code, created.stderr).toBe(0);
      expect(created.json).toMatchObject({
        object: "webhook_endpoint",
        url: receiver.at("/hook"),
        name: "ci",
        event_types: ["generation.failed"],
        status: "active",
      });
      expect(created.json.signing_secret).toMatch(/^whsec_/);
      const id: string = created.json.id;

      const [list, listText, test, createText, badEvents] = await Promise.all([
        runCli(["webhooks", "list", "--json"], env()),
        runCli(["webhooks", "list"], env()),
        runCli(["webhooks", "test", id, "--json"], env()),
        runCli(["webhooks", "create", "--url", receiver.at("/other")], env()),
        runCli(
          ["webhooks", "create", "--url", receiver.at("/x"), "--events", "nope"],
          env({ FRAMEGATE_BASE_URL: DEAD }),
        ),
      ]);
      expect(list.code, list.stderr).toBe(0);
      expect(list.json.object).toBe("list");
      expect(list.json.data.find((e: { id: string }) => e.id === id)).toMatchObject({ name: "ci" });
      expect(list.json.data[0]).not.toHaveProperty("signing_secret");
      expect(listText.stdout).toMatch(
        new RegExp(`^${id} {2}active {2}${receiver.at("/hook")} {2}generation\\.failed {2}ci$`, "m"),
      );
      expect(test.code, test.stderr).toBe(0);
      expect(test.json).toMatchObject({ object: "event", type: "webhook.test", data: { endpoint_id: id } });
      expect(createText.code, createText.stderr).toBe(0);
      expect(createText.stdout).toMatch(/signing secret: whsec_\S+/);
      expect(badEvents.code).toBe(2);
      expect(badEvents.stderr).toMatch(
        /--events must be a comma-separated list of generation\.succeeded, generation\.failed/,
      );

      await receiver.waitForRequests(1);
      const deadline = Date.now() + 10_000;
      while ((await t.request(`/api/v1/webhooks/${id}/deliveries`, { key })).body.data.length === 0) {
        if (Date.now() > deadline) throw new Error("no delivery recorded");
        await new Promise((r) => setTimeout(r, 50));
      }
      const [deliveries, deliveriesText, failedOnly] = await Promise.all([
        runCli(["webhooks", "deliveries", id, "--json"], env()),
        runCli(["webhooks", "deliveries", id], env()),
        runCli(["webhooks", "deliveries", id, "--status", "failed", "--json"], env()),
      ]);
      expect(deliveries.code, deliveries.stderr).toBe(0);
      expect(deliveries.json.data[0]).toMatchObject({
        object: "webhook_delivery",
        endpoint_id: id,
        event_id: test.json.id,
        event_type: "webhook.test",
        status: "succeeded",
        response_status: 200,
      });
      expect(deliveriesText.stdout).toMatch(/^whdel_\w+ {2}\S+ {2}webhook\.test {2}attempt 1 {2}succeeded {2}HTTP 200/);
      expect(failedOnly.code).toBe(0);
      expect(failedOnly.json).toEqual({ object: "list", data: [] });
    } finally {
      await receiver.close();
    }
  });

  it("--help of every command has examples", async () => {
    // Every command of the tree, in process (the help text is the same as the binary's) …
    const all: Command[] = [];
    const walk = (cmd: Command) => {
      all.push(cmd);
      for (const sub of cmd.commands) walk(sub);
    };
    walk(buildProgram());
    expect(all.length).toBeGreaterThan(20);
    for (const cmd of all) {
      let help = "";
      cmd.configureOutput({ writeOut: (s) => (help += s) });
      cmd.outputHelp();
      expect(help, cmd.name()).toMatch(/Examples:\n {2}\$ framegate /);
    }
    // … and for real, from the binary: exit 0, the catalog's values in the flags' help.
    const [root, generate, credits] = await Promise.all([
      runCli(["--help"], {}),
      runCli(["generate", "--help"], {}),
      runCli(["credits", "--help"], {}),
    ]);
    for (const r of [root, generate, credits]) {
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/Examples:\n {2}\$ framegate /);
    }
    expect(generate.stdout).toMatch(/--duration <seconds> +length in seconds: 5 or 10 \(default 5\)/);
    expect(generate.stdout).toMatch(/--aspect <ratio> +aspect ratio: 1:1, 16:9 or 9:16 \(default 1:1\)/);
    expect(generate.stdout).toContain("--no-wait");
    expect(credits.stdout).toMatch(/Commands:\n {2}grant \[options\]/);
  });
});
