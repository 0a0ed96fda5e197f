/**
 * Cookie mode: a client built without an API key (the web console, on the server's own origin)
 * sends no Authorization header and asks fetch for same-origin credentials, so the browser attaches
 * the console's session cookie; a client with a key keeps fetch's default and sends the key.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { Framegate } from "../src/index.js";

interface Call {
  url: string;
  headers: Headers;
  credentials: RequestInit["credentials"];
}

function capture(): { calls: Call[]; fetch: typeof fetch } {
  const calls: Call[] = [];
  const fetchImpl = async (input: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(input), headers: new Headers(init?.headers), credentials: init?.credentials });
    if (String(input).endsWith("/events")) return new Response(null, { status: 204 });
    return new Response(JSON.stringify({ current_credits: 1 }), { headers: { "content-type": "application/json" } });
  };
  return { calls, fetch: fetchImpl as typeof fetch };
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("cookie mode", () => {
  it("without an API key: no Authorization header, credentials same-origin", async () => {
    vi.stubEnv("FRAMEGATE_API_KEY", "");
    vi.stubEnv("RIVYA_API_KEY", "");
    const { calls, fetch } = capture();
    await new Framegate({ fetch, baseUrl: "https://console.example" }).credits.retrieve();
    expect(calls[0]?.url).toBe("https://console.example/api/v1/credits");
    expect(calls[0]?.headers.has("authorization")).toBe(false);
    expect(calls[0]?.credentials).toBe("same-origin");
  });

  it("the event stream uses the same credentials mode", async () => {
    vi.stubEnv("FRAMEGATE_API_KEY", "");
    vi.stubEnv("RIVYA_API_KEY", "");
    const { calls, fetch } = capture();
    const client = new Framegate({ fetch, baseUrl: "https://console.example" });
    for await (const _ of client.generations.stream("task_x")) {
      // A 204 ends the stream at once: nothing to read.
    }
    expect(calls[0]?.url).toBe("https://console.example/api/v1/generations/task_x/events");
    expect(calls[0]?.headers.has("authorization")).toBe(false);
    expect(calls[0]?.credentials).toBe("same-origin");
  });

  it("with an API key: the key is sent and fetch's credentials default is left alone", async () => {
    const { calls, fetch } = capture();
    await new Framegate({ fetch, apiKey: "rvya_sk_k", baseUrl: "https://api.example" }).credits.retrieve();
    expect(calls[0]?.headers.get("authorization")).toBe("Bearer rvya_sk_k");
    expect(calls[0]?.credentials).toBeUndefined();
  });

  it("an explicit credentials option wins", async () => {
    vi.stubEnv("FRAMEGATE_API_KEY", "");
    vi.stubEnv("RIVYA_API_KEY", "");
    const { calls, fetch } = capture();
    await new Framegate({ fetch, baseUrl: "https://a.example", credentials: "include" }).credits.retrieve();
    await new Framegate({
      fetch,
      apiKey: "rvya_sk_k",
      baseUrl: "https://a.example",
      credentials: "omit",
    }).credits.retrieve();
    expect(calls.map((c) => c.credentials)).toEqual(["include", "omit"]);
  });
});
