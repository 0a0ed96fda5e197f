import { describe, expect, it } from "vitest";
import {
  asEnvelope,
  type KlingTaskData,
  parseCallbackBody,
  parseKlingJson,
  pickTask,
  toPollResult,
} from "./response.js";

const ID = "867283741759111202";

describe("parseKlingJson", () => {
  it("keeps string ids exact and quotes bare numeric task_id / id values", () => {
    const a = parseKlingJson(`{"code":0,"data":{"task_id":"${ID}"}}`) as { data: { task_id: string } };
    expect(a.data.task_id).toBe(ID);
    const b = parseKlingJson(
      `{"code":0,"data":{"task_id": ${ID} ,"task_result":{"videos":[{"id":${ID},"url":"u"}]}}}`,
    ) as {
      data: { task_id: string; task_result: { videos: Array<{ id: string }> } };
    };
    expect(b.data.task_id).toBe(ID);
    expect(b.data.task_result.videos[0]?.id).toBe(ID);
    // Text inside strings is left alone.
    const c = parseKlingJson(`{"prompt":"say \\"task_id\\": 123","task_id":"1"}`) as { prompt: string };
    expect(c.prompt).toBe('say "task_id": 123');
    expect(String(Number(ID))).not.toBe(ID);
  });

  it("asEnvelope needs an integer code", () => {
    expect(asEnvelope({ code: 0, message: "SUCCEED" })?.code).toBe(0);
    expect(asEnvelope({ code: "1303" })?.code).toBe(1303);
    expect(asEnvelope({ message: "x" })).toBeUndefined();
    expect(asEnvelope([])).toBeUndefined();
    expect(asEnvelope("x")).toBeUndefined();
  });
});

describe("pickTask", () => {
  const t = (task_id: string, ext?: string) => ({
    task_id,
    task_status: "processing",
    ...(ext ? { task_info: { external_task_id: ext } } : {}),
  });

  it("accepts an object or an array and matches by task_id or external id", () => {
    expect(pickTask(t(ID), { taskId: ID })).toMatchObject({ ok: true, task: { task_id: ID } });
    expect(pickTask([t("111111111111111111"), t(ID)], { taskId: ID })).toMatchObject({
      ok: true,
      task: { task_id: ID },
    });
    expect(pickTask([t("1", "a"), t("2", "b")], { externalTaskId: "b" })).toMatchObject({
      ok: true,
      task: { task_id: "2" },
    });
    expect(pickTask([t("1")], { taskId: ID })).toMatchObject({ ok: false, kind: "nomatch" });
    expect(pickTask([t("1"), t("2")], {})).toMatchObject({ ok: false, kind: "ambiguous" });
    expect(pickTask(undefined, {})).toMatchObject({ ok: false, kind: "shape" });
    expect(pickTask({ task_id: 12 }, {})).toMatchObject({ ok: false, kind: "shape" });
    expect(pickTask({ task_id: "../x" }, {})).toMatchObject({ ok: false, kind: "shape" });
    expect(pickTask("nope", {})).toMatchObject({ ok: false, kind: "shape" });
  });
});

describe("toPollResult", () => {
  const base: KlingTaskData = { task_id: ID, task_status: "processing" };
  it("pending states carry a retry hint", () => {
    expect(toPollResult({ ...base, task_status: "submitted" }, 1234)).toStrictEqual({
      state: "pending",
      retryAfterMs: 1234,
    });
    expect(toPollResult(base)).toStrictEqual({ state: "pending", retryAfterMs: 10_000 });
    expect(toPollResult({ ...base, task_status: "queueing" })).toMatchObject({ state: "pending" });
  });

  it("succeed → url media and details", () => {
    const r = toPollResult({
      ...base,
      task_status: "succeed",
      final_unit_deduction: "2",
      task_result: { videos: [{ id: "v1", url: "https://cdn.example/v.mp4", duration: "5.1" }] },
    });
    expect(r).toStrictEqual({
      state: "succeeded",
      media: [{ kind: "url", url: "https://cdn.example/v.mp4", mimeType: "video/mp4" }],
      details: { upstream_task_id: ID, final_unit_deduction: "2", video_duration: "5.1" },
    });
  });

  it("succeed without usable videos is an unexpected shape", () => {
    expect(typeof toPollResult({ ...base, task_status: "succeed" })).toBe("string");
    expect(
      typeof toPollResult({ ...base, task_status: "succeed", task_result: { videos: [{ url: "ftp://x" }] } }),
    ).toBe("string");
  });

  it("failed → reason from task_status_msg", () => {
    expect(toPollResult({ ...base, task_status: "failed", task_status_msg: "Image pixel is invalid" })).toStrictEqual({
      state: "failed",
      reason: "provider_error",
      message: "Kling task failed: Image pixel is invalid",
    });
    expect(
      toPollResult({ ...base, task_status: "failed", task_status_msg: "Failure to pass the risk control system" }),
    ).toMatchObject({
      state: "failed",
      reason: "content_rejected",
    });
    expect(toPollResult({ ...base, task_status: "failed" })).toMatchObject({
      state: "failed",
      reason: "provider_error",
    });
  });
});

describe("parseCallbackBody", () => {
  it("reads the bare task object, keeping the id exact", () => {
    expect(
      parseCallbackBody(`{"task_id":${ID},"task_status":"succeed","task_info":{"external_task_id":"task_abc"}}`),
    ).toStrictEqual({ taskId: ID, externalTaskId: "task_abc", status: "succeed" });
    expect(parseCallbackBody(`{"code":0,"data":{"task_id":"${ID}"}}`)).toStrictEqual({ taskId: ID });
    expect(parseCallbackBody("not json")).toBeUndefined();
    expect(parseCallbackBody("{}")).toBeUndefined();
  });
});
