import { describe, expect, it } from "vitest";
import {
  cleanText,
  errorCode,
  modelErrorReason,
  parseFalErrorBody,
  parseRetryAfter,
  pollHttpOutcome,
  submitHttpError,
  transportError,
} from "./errors.js";

const KEY = "secret-id:secret-part";
const now = () => Date.parse("2030-01-01T00:00:00Z");

function answer(status: number, body: unknown, headers: Record<string, string> = {}) {
  return { status, headers: new Headers(headers), text: typeof body === "string" ? body : JSON.stringify(body) };
}

const cpv = { detail: [{ loc: ["body", "prompt"], msg: "flagged", type: "content_policy_violation" }] };

describe("parseFalErrorBody", () => {
  it("tells model errors from request errors", () => {
    expect(parseFalErrorBody(JSON.stringify(cpv))).toEqual({
      kind: "model",
      errors: [{ type: "content_policy_violation", msg: "flagged", loc: ["body", "prompt"], categories: [] }],
    });
    expect(parseFalErrorBody(JSON.stringify({ detail: "Request timed out", error_type: "request_timeout" }))).toEqual({
      kind: "request",
      detail: "Request timed out",
      errorType: "request_timeout",
    });
    expect(
      parseFalErrorBody(JSON.stringify({ detail: "x" }), new Headers({ "x-fal-error-type": "runner_disconnected" })),
    ).toEqual({ kind: "request", detail: "x", errorType: "runner_disconnected" });
    expect(parseFalErrorBody("<html>502</html>", new Headers())).toEqual({ kind: "unknown", errorType: undefined });
    expect(parseFalErrorBody(JSON.stringify({ detail: [] }))).toEqual({ kind: "unknown", errorType: undefined });
  });
});

describe("modelErrorReason", () => {
  const item = (type: string, categories: string[] = []) => ({ type, msg: "", loc: [], categories });
  it("maps content, provider-side and input errors", () => {
    expect(modelErrorReason(422, [item("content_policy_violation")])).toBe("content_rejected");
    expect(modelErrorReason(422, [item("model_moderated")])).toBe("content_rejected");
    expect(modelErrorReason(422, [item("content_policy_violation", ["model_moderated"])])).toBe("content_rejected");
    expect(modelErrorReason(422, [item("something", ["model_moderated"])])).toBe("content_rejected");
    expect(modelErrorReason(422, [item("image_too_small")])).toBe("invalid_input");
    expect(modelErrorReason(422, [item("missing")])).toBe("invalid_input");
    expect(modelErrorReason(422, [item("file_download_error")])).toBe("provider_error");
    expect(modelErrorReason(400, [item("downstream_service_error")])).toBe("provider_error");
    expect(modelErrorReason(500, [item("internal_server_error")])).toBe("provider_error");
    expect(modelErrorReason(504, [item("generation_timeout")])).toBe("provider_error");
    expect(modelErrorReason(409, [item("whatever")])).toBe("provider_error");
  });
});

describe("submitHttpError", () => {
  it.each([
    [401, { detail: "bad key" }, {}, { retryable: false, reason: "provider_error", maybeAccepted: false }],
    [403, { detail: "locked" }, {}, { retryable: false, reason: "provider_error", maybeAccepted: false }],
    [
      429,
      { detail: "slow down" },
      { "retry-after": "7" },
      { retryable: true, saturated: true, maybeAccepted: false, retryAfterMs: 7000 },
    ],
    [
      503,
      { detail: "no runner", error_type: "runner_scheduling_failure" },
      {},
      { retryable: true, maybeAccepted: true },
    ],
    [504, { detail: "timeout", error_type: "request_timeout" }, {}, { retryable: true, maybeAccepted: true }],
    [500, "<html>oops</html>", {}, { retryable: true, maybeAccepted: true }],
    [408, "", {}, { retryable: true, maybeAccepted: true }],
    [422, cpv, {}, { retryable: false, reason: "content_rejected" }],
    [
      422,
      { detail: [{ loc: ["body", "duration"], msg: "bad", type: "one_of" }] },
      {},
      { retryable: false, reason: "invalid_input" },
    ],
    [400, { detail: "bad request" }, {}, { retryable: false, reason: "invalid_input" }],
    [400, "garbage", {}, { retryable: false, reason: "invalid_input" }],
    [
      400,
      { detail: [{ loc: ["body"], msg: "partner down", type: "downstream_service_error" }] },
      { "x-fal-retryable": "true" },
      { retryable: true, reason: "provider_error", maybeAccepted: false },
    ],
    [
      400,
      { detail: [{ loc: ["body"], msg: "partner down", type: "downstream_service_error" }] },
      {},
      { retryable: false, reason: "provider_error" },
    ],
    [404, { detail: "Not Found" }, {}, { retryable: false, reason: "provider_error" }],
    [402, { detail: "balance" }, {}, { retryable: false, reason: "provider_error" }],
  ] as const)("HTTP %i %j", (status, body, headers, expected) => {
    const err = submitHttpError(answer(status, body, headers), KEY, now);
    expect(err).toMatchObject(expected);
    expect(err.message).toContain(`HTTP ${status}`);
  });

  it("never echoes the key and stays one bounded line", () => {
    const err = submitHttpError(answer(401, { detail: `Key ${KEY} is invalid\n${"x".repeat(2000)}` }), KEY, now);
    expect(err.message).not.toContain(KEY);
    expect(err.message).not.toContain("secret-part");
    expect(err.message).toContain("[redacted]");
    expect(err.message).not.toContain("\n");
    expect(err.message.length).toBeLessThan(600);
  });
});

describe("pollHttpOutcome", () => {
  it("a model error on the result endpoint is the definitive answer", () => {
    expect(pollHttpOutcome("result", answer(422, cpv), KEY, now)).toEqual({
      failed: {
        state: "failed",
        reason: "content_rejected",
        message: "fal: flagged (content_policy_violation at body.prompt)",
      },
    });
    const internal = pollHttpOutcome(
      "result",
      answer(500, { detail: [{ loc: ["body"], msg: "boom", type: "internal_server_error" }] }),
      KEY,
      now,
    );
    expect("failed" in internal && internal.failed.reason).toBe("provider_error");
  });

  it("everything else is retryable, on status and result", () => {
    for (const stage of ["status", "result"] as const) {
      for (const [status, body] of [
        [504, { detail: "Request timed out", error_type: "request_timeout" }],
        [503, "upstream connect error"],
        [429, { detail: "rate" }],
        [401, { detail: "nope" }],
        [403, { detail: "nope" }],
        [404, { detail: "Request not found" }],
      ] as const) {
        const outcome = pollHttpOutcome(stage, answer(status, body, { "retry-after": "3" }), KEY, now);
        expect("retry" in outcome).toBe(true);
        if ("retry" in outcome) {
          expect(outcome.retry.retryable).toBe(true);
          expect(outcome.retry.maybeAccepted).toBe(false);
          expect(outcome.retry.retryAfterMs).toBe(3000);
        }
      }
    }
    // A model-shaped body on the status endpoint is not a result.
    expect("retry" in pollHttpOutcome("status", answer(422, cpv), KEY, now)).toBe(true);
  });
});

describe("transportError", () => {
  const refused = Object.assign(new TypeError("fetch failed"), {
    cause: Object.assign(new Error("x"), { code: "ECONNREFUSED" }),
  });
  const reset = Object.assign(new TypeError("fetch failed"), {
    cause: Object.assign(new Error("x"), { code: "ECONNRESET" }),
  });
  const aggregate = Object.assign(new TypeError("fetch failed"), {
    cause: new AggregateError([Object.assign(new Error("a"), { code: "ENETUNREACH" })]),
  });

  it("submit: maybeAccepted unless the request provably never left", () => {
    expect(transportError("submit", refused, { timedOut: false, timeoutMs: 1 })).toMatchObject({
      retryable: true,
      maybeAccepted: false,
    });
    expect(transportError("submit", aggregate, { timedOut: false, timeoutMs: 1 })).toMatchObject({
      retryable: true,
      maybeAccepted: false,
    });
    expect(transportError("submit", reset, { timedOut: false, timeoutMs: 1 })).toMatchObject({
      retryable: true,
      maybeAccepted: true,
    });
    expect(transportError("submit", new Error("?"), { timedOut: false, timeoutMs: 1 })).toMatchObject({
      maybeAccepted: true,
    });
    const timeout = transportError("submit", new DOMException("aborted", "AbortError"), {
      timedOut: true,
      timeoutMs: 1500,
    });
    expect(timeout).toMatchObject({ retryable: true, maybeAccepted: true });
    expect(timeout.message).toBe("fal submit timed out after 1500 ms");
  });

  it("poll stages are retryable and never maybeAccepted", () => {
    expect(transportError("status", reset, { timedOut: false, timeoutMs: 1 })).toMatchObject({
      retryable: true,
      maybeAccepted: false,
    });
    expect(transportError("result", reset, { timedOut: true, timeoutMs: 1 })).toMatchObject({
      retryable: true,
      maybeAccepted: false,
    });
  });

  it("finds codes on causes and aggregate members", () => {
    expect(errorCode(refused)).toBe("ECONNREFUSED");
    expect(errorCode(aggregate)).toBe("ENETUNREACH");
    expect(errorCode(new Error("plain"))).toBeUndefined();
  });
});

describe("helpers", () => {
  it("parseRetryAfter reads seconds and dates, capped", () => {
    expect(parseRetryAfter(new Headers({ "retry-after": "2" }), now)).toBe(2000);
    expect(parseRetryAfter(new Headers({ "retry-after": "0.5" }), now)).toBe(500);
    expect(parseRetryAfter(new Headers({ "retry-after": "Tue, 01 Jan 2030 00:00:30 GMT" }), now)).toBe(30_000);
    expect(parseRetryAfter(new Headers({ "retry-after": "99999" }), now)).toBe(600_000);
    expect(parseRetryAfter(new Headers({ "retry-after": "soon" }), now)).toBeUndefined();
    expect(parseRetryAfter(new Headers(), now)).toBeUndefined();
  });

  it("cleanText redacts, flattens and truncates", () => {
    expect(cleanText(`a\n${KEY}\tb`, KEY)).toBe("a [redacted] b");
    expect(cleanText("x".repeat(400), KEY)).toHaveLength(301);
  });
});
