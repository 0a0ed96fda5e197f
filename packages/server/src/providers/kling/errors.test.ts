import { describe, expect, it } from "vitest";
import { ProviderError } from "../provider.js";
import {
  errorFromResponse,
  failureReasonFor,
  isAuthCode,
  isDuplicateExternalIdError,
  KLING_CODE_RULES,
  KlingApiError,
  malformedResponseError,
  parseRetryAfter,
  transportError,
} from "./errors.js";

/** code → [HTTP status Kling uses, retryable, reason, saturated, maybeAccepted on submit] */
const TABLE: Array<[number, number, boolean, string, boolean, boolean]> = [
  [1000, 401, false, "provider_error", false, false],
  [1001, 401, false, "provider_error", false, false],
  [1002, 401, false, "provider_error", false, false],
  [1003, 401, false, "provider_error", false, false],
  [1004, 401, false, "provider_error", false, false],
  [1100, 429, false, "provider_error", false, false],
  [1101, 429, false, "provider_error", false, false],
  [1102, 429, false, "provider_error", false, false],
  [1103, 403, false, "provider_error", false, false],
  [1200, 400, false, "invalid_input", false, false],
  [1201, 400, false, "invalid_input", false, false],
  [1202, 404, false, "provider_error", false, false],
  [1203, 404, false, "provider_error", false, false],
  [1300, 400, false, "provider_error", false, false],
  [1301, 400, false, "content_rejected", false, false],
  [1302, 429, true, "provider_error", false, false],
  [1303, 429, true, "provider_error", true, false],
  [1304, 429, false, "provider_error", false, false],
  [5000, 500, true, "provider_error", false, true],
  [5001, 503, true, "provider_error", false, true],
  [5002, 504, true, "provider_error", false, true],
];

describe("Kling code table", () => {
  it("covers every documented code", () => {
    expect(Object.keys(KLING_CODE_RULES).map(Number).sort()).toStrictEqual(TABLE.map((r) => r[0]).sort());
  });

  it.each(TABLE)("code %i (HTTP %i)", (code, http, retryable, reason, saturated, maybeAcceptedOnSubmit) => {
    for (const phase of ["submit", "poll", "find"] as const) {
      const err = errorFromResponse({ phase, httpStatus: http, code, message: "msg", requestId: "req-1" });
      expect(err).toBeInstanceOf(ProviderError);
      expect(err).toBeInstanceOf(KlingApiError);
      expect(err.retryable).toBe(retryable);
      expect(err.reason).toBe(reason);
      expect(err.saturated).toBe(saturated);
      expect(err.maybeAccepted).toBe(phase === "submit" && maybeAcceptedOnSubmit);
      if (retryable) expect(err.retryAfterMs).toBeGreaterThanOrEqual(1000);
      expect(err.code).toBe(code);
      expect(err.httpStatus).toBe(http);
      expect(err.message).toContain(String(code));
      expect(err.message).toContain("req-1");
    }
  });

  it("classifies by code, not HTTP status: 1102 as 429 is final, 1303 as 200 is saturation", () => {
    expect(errorFromResponse({ phase: "submit", httpStatus: 429, code: 1102 }).retryable).toBe(false);
    const sat = errorFromResponse({ phase: "submit", httpStatus: 200, code: 1303 });
    expect(sat.retryable && sat.saturated).toBe(true);
    expect(errorFromResponse({ phase: "poll", httpStatus: 500, code: 1201 }).retryable).toBe(false);
  });

  it("Retry-After is honoured, never below 1 s", () => {
    expect(errorFromResponse({ phase: "poll", httpStatus: 429, code: 1302, retryAfter: "7" }).retryAfterMs).toBe(7000);
    expect(errorFromResponse({ phase: "poll", httpStatus: 429, code: 1302, retryAfter: "0" }).retryAfterMs).toBe(1000);
    expect(errorFromResponse({ phase: "poll", httpStatus: 429, code: 1303 }).retryAfterMs).toBeGreaterThanOrEqual(1000);
    expect(parseRetryAfter("1.5")).toBe(1500);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });

  it("unknown codes or no code fall back on the HTTP status", () => {
    const html502 = errorFromResponse({ phase: "submit", httpStatus: 502, message: "<html>bad gateway</html>" });
    expect(html502).toMatchObject({ retryable: true, maybeAccepted: true });
    expect(errorFromResponse({ phase: "poll", httpStatus: 502 })).toMatchObject({
      retryable: true,
      maybeAccepted: false,
    });
    expect(errorFromResponse({ phase: "poll", httpStatus: 404 }).retryable).toBe(false);
    expect(errorFromResponse({ phase: "submit", httpStatus: 400, code: 1999 }).retryable).toBe(false);
    expect(errorFromResponse({ phase: "submit", httpStatus: 429, code: 1999 })).toMatchObject({
      retryable: true,
      maybeAccepted: false,
    });
    expect(errorFromResponse({ phase: "submit", httpStatus: 200, code: 7 })).toMatchObject({
      retryable: true,
      maybeAccepted: true,
    });
  });

  it("auth codes are 1000–1004 only", () => {
    for (const c of [1000, 1001, 1002, 1003, 1004]) expect(isAuthCode(c)).toBe(true);
    for (const c of [0, 999, 1005, 1100, undefined]) expect(isAuthCode(c)).toBe(false);
    const after = errorFromResponse({ phase: "poll", httpStatus: 401, code: 1002, afterAuthRetry: true });
    expect(after.message).toContain("fresh token");
  });

  it("transport errors are retryable; maybeAccepted only for submits that may have reached Kling", () => {
    expect(transportError("submit", "timeout", "x")).toMatchObject({ retryable: true, maybeAccepted: true });
    expect(transportError("submit", "network", "reset")).toMatchObject({ retryable: true, maybeAccepted: true });
    expect(transportError("submit", "network", "refused", true)).toMatchObject({
      retryable: true,
      maybeAccepted: false,
    });
    expect(transportError("poll", "timeout", "x")).toMatchObject({ retryable: true, maybeAccepted: false });
    expect(transportError("poll", "timeout", "x").retryAfterMs).toBeGreaterThanOrEqual(1000);
    expect(malformedResponseError("submit", "bad")).toMatchObject({ retryable: true, maybeAccepted: true });
    expect(malformedResponseError("poll", "bad")).toMatchObject({ retryable: true, maybeAccepted: false });
    expect(malformedResponseError("poll", "bad").message).toMatch(/unexpected response/);
  });

  it("recognizes a duplicate external_task_id refusal", () => {
    const dup = errorFromResponse({
      phase: "submit",
      httpStatus: 400,
      code: 1201,
      message: "external_task_id x already exists",
    });
    expect(isDuplicateExternalIdError(dup)).toBe(true);
    expect(
      isDuplicateExternalIdError(
        errorFromResponse({ phase: "submit", httpStatus: 400, code: 1201, message: "duration invalid" }),
      ),
    ).toBe(false);
    expect(
      isDuplicateExternalIdError(
        errorFromResponse({ phase: "submit", httpStatus: 429, code: 1102, message: "already exists" }),
      ),
    ).toBe(false);
  });
});

describe("failed-task reasons", () => {
  it.each([
    ["Failure to pass the risk control system", "content_rejected"],
    ["risk control", "content_rejected"],
    ["The content you entered may violate our content security policy", "content_rejected"],
    ["Sensitive content detected", "content_rejected"],
    ["output video failed moderation", "content_rejected"],
    ["内容安全风控", "content_rejected"],
    ["Image pixel is invalid", "provider_error"],
    ["internal error", "provider_error"],
    ["", "provider_error"],
  ])("%s → %s", (msg, reason) => {
    expect(failureReasonFor(msg)).toBe(reason);
  });
  it("undefined → provider_error", () => expect(failureReasonFor(undefined)).toBe("provider_error"));
});
