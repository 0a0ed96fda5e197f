/**
 * Unit tests of the catalog-driven request validator (api-contract §4, §5): normalization,
 * defaults, every rejection with its JSON path, and the one-line summary used as error.message.
 */
import { describe, expect, it } from "vitest";
import { KLING_2_6, type ModelEntry, type ParamDescriptor } from "./catalog.js";
import type { ErrorDetail } from "./errors.js";
import { summarizeIssues, type ValidationResult, validateGenerationRequest } from "./validate.js";

const base = { model: "kling-2-6", prompt: "a cat surfing" };
const image = { url: "https://files.example.com/a.png", kind: "image" };

function issuesOf(result: ValidationResult): ErrorDetail[] {
  if (result.ok) throw new Error(`expected a failure, got ${JSON.stringify(result.value)}`);
  return result.issues;
}

function accepted(result: ValidationResult) {
  if (!result.ok) throw new Error(`expected success, got ${JSON.stringify(result.issues)}`);
  return result.value;
}

function paths(result: ValidationResult): string[] {
  return issuesOf(result).map((i) => i.path);
}

describe("validateGenerationRequest: accepted requests", () => {
  it("applies every default and returns the catalog entry", () => {
    const value = accepted(validateGenerationRequest(base));
    expect(value.model).toBe(KLING_2_6);
    expect(value.prompt).toBe("a cat surfing");
    expect(value.params).toEqual({ duration: "5", sound: "false", aspect_ratio: "1:1" });
    expect(value.referenceMediaItems).toEqual([]);
    expect(value.clientRequestId).toBeNull();
  });

  it.each([
    [
      { duration: 10, sound: true },
      { duration: "10", sound: "true", aspect_ratio: "1:1" },
    ],
    [
      { duration: 5, sound: false },
      { duration: "5", sound: "false", aspect_ratio: "1:1" },
    ],
    [
      { duration: "10", aspect_ratio: "16:9" },
      { duration: "10", sound: "false", aspect_ratio: "16:9" },
    ],
    [
      { aspect_ratio: "9:16", sound: "true" },
      { duration: "5", sound: "true", aspect_ratio: "9:16" },
    ],
    [{}, { duration: "5", sound: "false", aspect_ratio: "1:1" }],
  ])("normalizes params %j to %j", (params, expected) => {
    expect(accepted(validateGenerationRequest({ ...base, params })).params).toEqual(expected);
  });

  it("treats undefined params and a null client_request_id as omitted", () => {
    const value = accepted(validateGenerationRequest({ ...base, params: undefined, client_request_id: null }));
    expect(value.params).toEqual({ duration: "5", sound: "false", aspect_ratio: "1:1" });
    expect(value.clientRequestId).toBeNull();
  });

  it("keeps the prompt as sent (no trimming)", () => {
    expect(accepted(validateGenerationRequest({ ...base, prompt: "  spaced  " })).prompt).toBe("  spaced  ");
  });

  it("counts the prompt in code points, not UTF-16 units", () => {
    const emoji = "\u{1F3C4}".repeat(1000);
    expect(emoji.length).toBe(2000);
    expect(validateGenerationRequest({ ...base, prompt: emoji }).ok).toBe(true);
    expect(validateGenerationRequest({ ...base, prompt: "x".repeat(1000) }).ok).toBe(true);
    // Combining marks are separate code points.
    expect(validateGenerationRequest({ ...base, prompt: "e\u0301".repeat(500) }).ok).toBe(true);
    expect(paths(validateGenerationRequest({ ...base, prompt: `${"e\u0301".repeat(500)}x` }))).toEqual(["prompt"]);
  });

  it("returns client_request_id up to 128 characters", () => {
    const id = "r".repeat(128);
    expect(accepted(validateGenerationRequest({ ...base, client_request_id: id })).clientRequestId).toBe(id);
    expect(accepted(validateGenerationRequest({ ...base, client_request_id: "" })).clientRequestId).toBe("");
  });

  it("passes a well-formed reference item through (ownership is checked by the server)", () => {
    const item = { ...image, name: "a.png", mimeType: "image/png" };
    const value = accepted(validateGenerationRequest({ ...base, params: { referenceMediaItems: [item] } }));
    expect(value.referenceMediaItems).toEqual([item]);
    // referenceMediaItems is not a param the task stores.
    expect(value.params).toEqual({ duration: "5", sound: "false", aspect_ratio: "1:1" });
  });

  it("does not modify its input", () => {
    const body = { ...base, params: { duration: 10, sound: true } };
    const copy = structuredClone(body);
    validateGenerationRequest(body);
    expect(body).toEqual(copy);
  });
});

describe("validateGenerationRequest: rejected requests", () => {
  it.each([
    ["an array", [base]],
    ["a string", "hello"],
    ["null", null],
    ["undefined", undefined],
    ["a number", 3],
  ])("a body that is %s", (_name, body) => {
    const issues = issuesOf(validateGenerationRequest(body));
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toBe("");
    expect(issues[0]?.issue).toMatch(/JSON object/);
  });

  it("unknown top-level fields, with a hint for files", () => {
    const issues = issuesOf(validateGenerationRequest({ ...base, files: [], extra: 1 }));
    expect(issues.map((i) => i.path)).toEqual(["files", "extra"]);
    expect(issues[0]?.issue).toMatch(/params\.referenceMediaItems/);
    expect(issues[1]?.issue).toBe("unknown field");
  });

  it.each([
    ["missing", {}, /required/],
    ["a number", { model: 1 }, /non-empty string/],
    ["empty", { model: "" }, /non-empty string/],
    ["unknown", { model: "kling-3" }, /unknown model "kling-3"/],
  ])("model %s", (_name, body, issue) => {
    const issues = issuesOf(validateGenerationRequest({ prompt: "x", ...body }));
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toBe("model");
    expect(issues[0]?.issue).toMatch(issue);
  });

  it("truncates a very long unknown model name in the issue", () => {
    const issue = issuesOf(validateGenerationRequest({ model: "m".repeat(5000), prompt: "x" }))[0]?.issue ?? "";
    expect(issue.length).toBeLessThan(200);
  });

  it("still reports top-level problems when the model is missing", () => {
    expect(paths(validateGenerationRequest({ prompt: "x", files: [], client_request_id: 5 }))).toEqual([
      "files",
      "client_request_id",
      "model",
    ]);
  });

  it.each([
    ["missing", undefined, /required/],
    ["a number", 5, /string, got a number/],
    ["null", null, /string, got null/],
    ["an object", {}, /string, got a object/],
    ["empty", "", /empty/],
    ["whitespace only", " \n\t ", /empty/],
    ["containing NUL", "ab\u0000c", /NUL/],
    ["1001 code points", "p".repeat(1001), /at most 1000 .*got 1001/],
    ["1001 emoji", "\u{1F600}".repeat(1001), /got 1001/],
  ])("prompt %s", (_name, prompt, issue) => {
    const issues = issuesOf(validateGenerationRequest({ model: "kling-2-6", prompt }));
    expect(issues.map((i) => i.path)).toEqual(["prompt"]);
    expect(issues[0]?.issue).toMatch(issue);
  });

  it.each([
    ["an array", []],
    ["a string", "duration=5"],
    ["a number", 5],
    ["a boolean", true],
  ])("params %s", (_name, params) => {
    const issues = issuesOf(validateGenerationRequest({ ...base, params }));
    expect(issues.map((i) => i.path)).toEqual(["params"]);
    expect(issues[0]?.issue).toMatch(/must be an object/);
  });

  it("an unknown param lists the allowed keys", () => {
    const issues = issuesOf(validateGenerationRequest({ ...base, params: { seed: 1 } }));
    expect(issues.map((i) => i.path)).toEqual(["params.seed"]);
    expect(issues[0]?.issue).toMatch(/duration, sound, aspect_ratio, referenceMediaItems/);
  });

  it.each([
    ["duration", "7"],
    ["duration", 7],
    ["duration", 5.5],
    ["duration", "05"],
    ["duration", null],
    ["duration", [5]],
    ["duration", { value: 5 }],
    ["sound", "yes"],
    ["sound", 1],
    ["sound", "TRUE"],
    ["aspect_ratio", "4:3"],
    ["aspect_ratio", "1:1 "],
  ])("%s = %j", (key, bad) => {
    const issues = issuesOf(validateGenerationRequest({ ...base, params: { [key]: bad } }));
    expect(issues.map((i) => i.path)).toEqual([`params.${key}`]);
    expect(issues[0]?.issue).toMatch(/^must be one of "/);
  });

  it.each([
    ["a number", 1],
    ["an array", ["id"]],
    ["129 characters", "c".repeat(129)],
  ])("client_request_id %s", (_name, id) => {
    expect(paths(validateGenerationRequest({ ...base, client_request_id: id }))).toEqual(["client_request_id"]);
  });

  it.each([
    ["not an array", image, "params.referenceMediaItems", /array/],
    ["two items", [image, image], "params.referenceMediaItems", /at most 1 item/],
    ["an item that is a string", ["https://x.example/a.png"], "params.referenceMediaItems[0]", /object/],
    ["an item that is null", [null], "params.referenceMediaItems[0]", /object/],
    ["an item without url", [{ kind: "image" }], "params.referenceMediaItems[0].url", /required/],
    ["an empty url", [{ ...image, url: "" }], "params.referenceMediaItems[0].url", /required/],
    ["a relative url", [{ ...image, url: "a.png" }], "params.referenceMediaItems[0].url", /absolute URL/],
    [
      "a url over 2048 characters",
      [{ ...image, url: `https://x.example/${"a".repeat(2048)}` }],
      "params.referenceMediaItems[0].url",
      /2048/,
    ],
    ["kind video", [{ ...image, kind: "video" }], "params.referenceMediaItems[0].kind", /"image"/],
    ["kind missing", [{ url: image.url }], "params.referenceMediaItems[0].kind", /"image"/],
    ["an unknown item field", [{ ...image, width: 5 }], "params.referenceMediaItems[0].width", /unknown field/],
    ["a non-string name", [{ ...image, name: 5 }], "params.referenceMediaItems[0].name", /string/],
    ["a long name", [{ ...image, name: "n".repeat(256) }], "params.referenceMediaItems[0].name", /255/],
    ["a non-string mimeType", [{ ...image, mimeType: 1 }], "params.referenceMediaItems[0].mimeType", /string/],
    [
      "a zero durationSeconds",
      [{ ...image, durationSeconds: 0 }],
      "params.referenceMediaItems[0].durationSeconds",
      /positive/,
    ],
    [
      "a string durationSeconds",
      [{ ...image, durationSeconds: "3" }],
      "params.referenceMediaItems[0].durationSeconds",
      /positive/,
    ],
    [
      "a non-string durationToken",
      [{ ...image, durationToken: 3 }],
      "params.referenceMediaItems[0].durationToken",
      /string/,
    ],
  ])("referenceMediaItems: %s", (_name, items, path, issue) => {
    const issues = issuesOf(validateGenerationRequest({ ...base, params: { referenceMediaItems: items } }));
    const match = issues.find((i) => i.path === path);
    expect(match, JSON.stringify(issues)).toBeDefined();
    expect(match?.issue).toMatch(issue);
  });

  it("reports every issue at once, in a stable order", () => {
    const issues = issuesOf(
      validateGenerationRequest({
        model: "kling-2-6",
        prompt: "",
        client_request_id: 1,
        files: [],
        params: { duration: "7", sound: "maybe", fps: 30, referenceMediaItems: [{ kind: "video" }] },
      }),
    );
    expect(issues.map((i) => i.path)).toEqual([
      "files",
      "client_request_id",
      "prompt",
      "params.duration",
      "params.sound",
      "params.fps",
      "params.referenceMediaItems[0].url",
      "params.referenceMediaItems[0].kind",
    ]);
  });
});

describe("validateGenerationRequest with a custom catalog", () => {
  const number: ParamDescriptor = {
    key: "cfg",
    type: "number",
    required: false,
    default: 0.5,
    options: null,
    min: 0,
    max: 1,
    step: 0.1,
    description: "guidance",
  };
  const text: ParamDescriptor = {
    key: "negative_prompt",
    type: "text",
    required: true,
    default: null,
    options: null,
    min: null,
    max: null,
    step: null,
    description: "what to avoid",
  };
  const custom: ModelEntry = {
    ...KLING_2_6,
    id: "custom-1",
    max_prompt_length: 10,
    reference_media: null,
    params: [number, text],
  };
  const soon: ModelEntry = { ...KLING_2_6, id: "soon-1", api_status: "coming_soon" };
  const catalog = [custom, soon];

  it("finds models only in the given catalog", () => {
    expect(paths(validateGenerationRequest(base, catalog))).toEqual(["model"]);
    expect(
      validateGenerationRequest({ model: "custom-1", prompt: "x", params: { negative_prompt: "" } }, catalog).ok,
    ).toBe(true);
  });

  it("applies a number default, checks bounds and requires required params", () => {
    const ok = accepted(
      validateGenerationRequest({ model: "custom-1", prompt: "x", params: { negative_prompt: "blur" } }, catalog),
    );
    expect(ok.params).toEqual({ cfg: "0.5", negative_prompt: "blur" });
    expect(paths(validateGenerationRequest({ model: "custom-1", prompt: "x" }, catalog))).toEqual([
      "params.negative_prompt",
    ]);
    const bad = issuesOf(
      validateGenerationRequest({ model: "custom-1", prompt: "x", params: { cfg: 2, negative_prompt: 5 } }, catalog),
    );
    expect(bad).toEqual([
      { path: "params.cfg", issue: "must be at most 1" },
      { path: "params.negative_prompt", issue: "must be a string" },
    ]);
    expect(
      paths(
        validateGenerationRequest(
          { model: "custom-1", prompt: "x", params: { cfg: -1, negative_prompt: "" } },
          catalog,
        ),
      ),
    ).toEqual(["params.cfg"]);
    expect(
      paths(
        validateGenerationRequest(
          { model: "custom-1", prompt: "x", params: { cfg: "0.5", negative_prompt: "" } },
          catalog,
        ),
      ),
    ).toEqual(["params.cfg"]);
  });

  it("uses the model's prompt limit", () => {
    expect(
      paths(
        validateGenerationRequest(
          { model: "custom-1", prompt: "x".repeat(11), params: { negative_prompt: "" } },
          catalog,
        ),
      ),
    ).toEqual(["prompt"]);
  });

  it("refuses reference media for a model without a policy, and does not list it as allowed", () => {
    const refused = issuesOf(
      validateGenerationRequest(
        { model: "custom-1", prompt: "x", params: { negative_prompt: "", referenceMediaItems: [] } },
        catalog,
      ),
    );
    expect(refused.map((i) => i.path)).toEqual(["params.referenceMediaItems"]);
    const unknown = issuesOf(
      validateGenerationRequest({ model: "custom-1", prompt: "x", params: { negative_prompt: "", x: 1 } }, catalog),
    );
    expect(unknown[0]?.issue).toMatch(/allowed: cfg, negative_prompt$/);
  });

  it("refuses a model that is not available through the API", () => {
    const issues = issuesOf(validateGenerationRequest({ model: "soon-1", prompt: "x" }, catalog));
    expect(issues).toEqual([{ path: "model", issue: "model soon-1 is not available through the API" }]);
  });
});

describe("summarizeIssues", () => {
  it("has a fallback for no issues", () => {
    expect(summarizeIssues([])).toBe("The request is invalid.");
  });

  it("names the first issue with its path", () => {
    expect(summarizeIssues([{ path: "prompt", issue: "must not be empty" }])).toBe(
      "Invalid request: prompt must not be empty.",
    );
  });

  it("omits an empty (root) path", () => {
    expect(summarizeIssues([{ path: "", issue: "request body must be a JSON object, got an array" }])).toBe(
      "Invalid request: request body must be a JSON object, got an array.",
    );
  });

  it("counts the other issues, singular and plural", () => {
    const a = { path: "a", issue: "is bad" };
    expect(summarizeIssues([a, a])).toBe("Invalid request: a is bad (and 1 more issue).");
    expect(summarizeIssues([a, a, a])).toBe("Invalid request: a is bad (and 2 more issues).");
  });

  it("summarizes what the validator returns", () => {
    const result = validateGenerationRequest({ model: "kling-2-6", prompt: "", params: { duration: "7" } });
    expect(summarizeIssues(issuesOf(result))).toBe("Invalid request: prompt must not be empty (and 1 more issue).");
  });
});
