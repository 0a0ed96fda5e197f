/**
 * The conformance check itself: each kind of undocumented answer is caught, and real answers of
 * a running server pass.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./harness.js";
import { checkExchange, type Exchange, observedResponses, takeConformanceViolations } from "./openapi-conformance.js";

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const errorBody = json({ error: { code: "not_found", message: "No such thing.", requestId: "req_1" } });

/** The headers every answer of the API carries. */
const COMMON = { "x-request-id": "req_1", "content-type": "application/json" };

function exchange(overrides: Partial<Exchange>): Exchange {
  return {
    method: "GET",
    path: "/api/v1/credits",
    status: 200,
    headers: { ...COMMON, ratelimit: '"read";r=59;t=60', "ratelimit-policy": '"read";q=60;w=60' },
    body: json({ current_credits: 10 }),
    ...overrides,
  };
}

describe("the conformance check", () => {
  it("accepts an answer the document describes", () => {
    expect(checkExchange(exchange({}))).toEqual([]);
  });

  it("catches an undocumented status", () => {
    expect(checkExchange(exchange({ status: 418 })).join()).toMatch(/status 418 is not documented/);
  });

  it("catches an undocumented header", () => {
    const ex = exchange({});
    ex.headers["x-made-up"] = "1";
    expect(checkExchange(ex).join()).toMatch(/x-made-up is sent but not documented/);
  });

  it("catches a body that does not match its schema", () => {
    expect(checkExchange(exchange({ body: json({ current_credits: "lots" }) })).join()).toMatch(
      /does not match the document.*current_credits/,
    );
  });

  it("catches an undocumented content type", () => {
    const ex = exchange({ body: Buffer.from("10") });
    ex.headers["content-type"] = "text/plain";
    expect(checkExchange(ex).join()).toMatch(/Content-Type text\/plain is not one of/);
  });

  it("catches a header value that does not match its schema", () => {
    const ex = exchange({ status: 429, body: json({ error: { code: "rate_limited", message: "Slow down." } }) });
    ex.headers["retry-after"] = "soon";
    expect(checkExchange(ex).join()).toMatch(/header Retry-After: does not match/i);
  });

  it("checks unknown API paths answer 404 in the error envelope", () => {
    const unknown = { path: "/api/v1/nothing-here", status: 404, headers: COMMON };
    expect(checkExchange(exchange({ ...unknown, body: errorBody }))).toEqual([]);
    expect(checkExchange(exchange({ ...unknown, body: json({ oops: true }) })).join()).toMatch(/does not match/);
    expect(checkExchange(exchange({ ...unknown, status: 200 })).join()).toMatch(/answered 200, not 404/);
  });

  it("checks a method the path does not document answers 405 with Allow", () => {
    const wrongMethod = { method: "PUT", path: "/api/v1/credits", status: 405, body: errorBody };
    expect(checkExchange(exchange(wrongMethod)).join()).toMatch(/Allow \(absent\) lacks get/);
    const ex = exchange(wrongMethod);
    ex.headers.allow = "GET, HEAD";
    expect(checkExchange(ex)).toEqual([]);
  });

  it("leaves paths outside the public document alone", () => {
    expect(checkExchange(exchange({ path: "/healthz", headers: { "x-anything": "1" } }))).toEqual([]);
  });
});

describe("the conformance check on a running server", () => {
  let t: TestServer;
  let key: string;
  beforeAll(async () => {
    t = await startTestServer();
    ({ key } = await t.createAccount(100));
  });
  afterAll(() => t.close());

  it("sees what the server really sends and finds it documented", async () => {
    takeConformanceViolations();
    const before = observedResponses();
    const answers = await Promise.all([
      t.request("/api/v1/credits", { key }),
      t.request("/api/v1/models"),
      t.request("/api/v1/generations/task_missing", { key }),
      t.request("/api/v1/credits"),
      t.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt: "" } }),
      t.request("/api/v1/credits", { key, method: "DELETE" }),
    ]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 404, 401, 400, 405]);
    expect(observedResponses() - before).toBe(answers.length);
    expect(takeConformanceViolations()).toEqual([]);
  });
});
