import { describe, expect, it } from "vitest";
import { ApiError, MAX_ERROR_DETAILS } from "./errors.js";

/** No lone surrogate: a round trip through UTF-8 would replace one with U+FFFD. */
const wellFormed = (text: string) => Buffer.from(text, "utf8").toString("utf8") === text;
const issues = (n: number) => Array.from({ length: n }, (_, i) => ({ path: `p${i}`, issue: "bad" }));

describe("ApiError details stay small", () => {
  it("keeps up to MAX_ERROR_DETAILS details untouched", () => {
    const error = new ApiError("validation_failed", "x", { details: issues(MAX_ERROR_DETAILS) });
    expect(error.details).toEqual(issues(MAX_ERROR_DETAILS));
  });

  it("counts what it leaves out in one final entry", () => {
    expect(new ApiError("validation_failed", "x", { details: issues(21) }).details?.at(-1)).toEqual({
      path: "",
      issue: "1 more issue not shown",
    });
    const many = new ApiError("validation_failed", "x", { details: issues(6001) }).details ?? [];
    expect(many).toHaveLength(MAX_ERROR_DETAILS + 1);
    expect(many.at(-1)).toEqual({ path: "", issue: "5981 more issues not shown" });
  });

  it("clips long paths, issues and messages without splitting a surrogate pair", () => {
    const fox = "\u{1F98A}";
    const error = new ApiError("validation_failed", fox.repeat(5000), {
      details: [{ path: `a${fox.repeat(500)}`, issue: "y".repeat(5000) }],
    });
    expect(error.message.length).toBeLessThanOrEqual(1000);
    expect(wellFormed(error.message)).toBe(true);
    const [detail] = error.details ?? [];
    expect(detail?.path.length).toBeLessThanOrEqual(200);
    expect(wellFormed(detail?.path ?? "")).toBe(true);
    expect(detail?.path.endsWith("…")).toBe(true);
    expect(detail?.issue).toBe(`${"y".repeat(199)}…`);
  });

  it("leaves an error without details without details", () => {
    expect(new ApiError("not_found", "Task not found.").details).toBeUndefined();
  });
});
