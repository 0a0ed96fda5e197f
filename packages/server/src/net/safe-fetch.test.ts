/**
 * SSRF-guarded outbound client against local HTTP servers. All traffic stays on 127.0.0.1: names are
 * resolved by injected lookups; `private.test` answers 127.0.0.2, which the guard must refuse before any
 * connection (were it broken, the attempt would still stay on the loopback interface).
 *
 * Test seam: the guard refuses every loopback address, so a first hop that is "allowed at connect" while
 * still reaching 127.0.0.1 needs `policy.treatAsPublic`, which makes safe-fetch's connect-time check treat
 * the listed addresses as public. `checkUrl` and `resolveAndCheck` keep the real classifier.
 */
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { GuardedPool, OutboundError, readSnippet, type SafeFetchOptions, safeFetch } from "./safe-fetch.js";
import { type LookupFn, resolveAndCheck } from "./url-guard.js";

const policy = vi.hoisted(() => ({ treatAsPublic: new Set<string>() }));

vi.mock("./url-guard.js", async (importOriginal) => {
  const actual = await importOriginal<typeof import("./url-guard.js")>();
  return {
    ...actual,
    isForbiddenAddress: (ip: string) => !policy.treatAsPublic.has(ip) && actual.isForbiddenAddress(ip),
  };
});

// ---------------------------------------------------------------------------------------------------------
// Local server

let server: Server;
let port: number;
/** Paths the server received, in order. */
const hits: string[] = [];

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? "/", "http://local");
  hits.push(url.pathname);
  const chain = /^\/chain\/(\d+)$/.exec(url.pathname);
  if (chain) {
    const n = Number(chain[1]);
    if (n === 0) res.end("end of chain");
    else res.writeHead(302, { location: `/chain/${n - 1}` }).end();
    return;
  }
  switch (url.pathname) {
    case "/ok":
      res.writeHead(200, { "content-type": "text/plain" }).end("hello world");
      return;
    case "/utf8":
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8" }).end("héllo wörld");
      return;
    case "/echo": {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(
          JSON.stringify({ method: req.method, headers: req.headers, body: Buffer.concat(chunks).toString("utf8") }),
        );
      });
      return;
    }
    case "/redirect": {
      const headers: Record<string, string> = { location: url.searchParams.get("to") ?? "/ok" };
      if (url.searchParams.has("close")) headers.connection = "close";
      if (url.searchParams.has("cookie")) headers["set-cookie"] = "sid=abc; Path=/";
      res.writeHead(Number(url.searchParams.get("status") ?? 302), headers).end();
      return;
    }
    case "/hang":
      return; // headers never sent
    case "/trickle": {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      const timer = setInterval(() => res.write("x"), 20);
      res.on("close", () => clearInterval(timer));
      return;
    }
    case "/declared-large":
      res.writeHead(200, { "content-length": "1000000" });
      res.write("x".repeat(100)); // and then nothing
      return;
    case "/chunked-large": {
      res.writeHead(200, { "content-type": "application/octet-stream" }); // no content-length: chunked
      let sent = 0;
      const timer = setInterval(() => {
        if (sent++ >= 40) {
          clearInterval(timer);
          res.end();
          return;
        }
        res.write(Buffer.alloc(1024, 0x61));
      }, 1);
      res.on("close", () => clearInterval(timer));
      return;
    }
    case "/exact":
      res.writeHead(200, { "content-length": "4096" }).end(Buffer.alloc(4096, 0x62));
      return;
    default:
      res.writeHead(404).end("not found");
  }
}

beforeAll(async () => {
  server = createServer(handle);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

afterEach(() => {
  policy.treatAsPublic.clear();
  hits.length = 0;
});

// ---------------------------------------------------------------------------------------------------------
// Helpers

type RecordingLookup = LookupFn & { calls: string[] };

/** Answers each name with the next entry of its list (the last one repeats); unknown names: ENOTFOUND. */
function lookupFrom(table: Record<string, string[][]>): RecordingLookup {
  const calls: string[] = [];
  const count = new Map<string, number>();
  const fn = ((hostname, _options, callback) => {
    calls.push(hostname);
    const answers = table[hostname];
    const n = count.get(hostname) ?? 0;
    count.set(hostname, n + 1);
    setImmediate(() => {
      const list = answers?.[Math.min(n, answers.length - 1)];
      if (!list) {
        const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
        err.code = "ENOTFOUND";
        callback(err, []);
        return;
      }
      callback(
        null,
        list.map((address) => ({ address, family: address.includes(":") ? 6 : 4 })),
      );
    });
  }) as RecordingLookup;
  fn.calls = calls;
  return fn;
}

function names(): RecordingLookup {
  return lookupFrom({
    "public.test": [["127.0.0.1"]],
    "other.test": [["127.0.0.1"]],
    "private.test": [["127.0.0.2"]],
    "zero.test": [["0.0.0.0"]],
    "mixed.test": [["127.0.0.1", "127.0.0.2"]],
  });
}

function options(overrides: Partial<SafeFetchOptions> = {}): SafeFetchOptions {
  return {
    allowHttp: true,
    allowPrivateAddresses: false,
    maxBytes: 1024 * 1024,
    timeoutMs: 5000,
    maxRedirects: 5,
    lookup: names(),
    ...overrides,
  };
}

const at = (host: string, path: string) => `http://${host}:${port}${path}`;

async function failure(promise: Promise<unknown>): Promise<OutboundError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(OutboundError);
    return err as OutboundError;
  }
  throw new Error("expected an OutboundError, got success");
}

async function readAll(body: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

// ---------------------------------------------------------------------------------------------------------

describe("connect-time address check", () => {
  it("refuses a name resolving to 127.0.0.1 at connect time when private addresses are not allowed", async () => {
    const lookup = names();
    const err = await failure(safeFetch(at("public.test", "/ok"), options({ lookup })));
    expect(err.kind).toBe("blocked");
    expect(err.message).toMatch(/^Refused to connect: .*loopback, private/);
    expect(err.message).not.toContain("127.0.0.1");
    expect(lookup.calls).toEqual(["public.test"]); // checkUrl passed it; the connector refused it
    expect(hits).toEqual([]);
  });

  it("succeeds for the same request with allowPrivateAddresses", async () => {
    const res = await safeFetch(at("public.test", "/ok"), options({ allowPrivateAddresses: true }));
    expect(res.status).toBe(200);
    expect(res.url).toBe(at("public.test", "/ok"));
    expect(res.headers.get("content-type")).toBe("text/plain");
    expect(await readAll(res.body)).toBe("hello world");
  });

  it("succeeds when the connect-time check considers the address public (test seam)", async () => {
    policy.treatAsPublic.add("127.0.0.1");
    const res = await safeFetch(at("public.test", "/ok"), options());
    expect(res.status).toBe(200);
    expect(await readAll(res.body)).toBe("hello world");
  });

  it("refuses a name with ANY forbidden address, and 0.0.0.0", async () => {
    policy.treatAsPublic.add("127.0.0.1");
    for (const host of ["mixed.test", "zero.test", "private.test"]) {
      expect((await failure(safeFetch(at(host, "/ok"), options()))).kind).toBe("blocked");
    }
    expect(hits).toEqual([]);
  });

  it("refuses literal loopback URLs before any lookup", async () => {
    const lookup = names();
    for (const url of [
      `http://127.0.0.1:${port}/ok`,
      `http://[::1]:${port}/ok`,
      `http://2130706433:${port}/ok`,
      `http://0177.0.0.1:${port}/ok`,
      `http://0x7f.1:${port}/ok`,
      `http://[::ffff:127.0.0.1]:${port}/ok`,
      `http://localhost:${port}/ok`,
    ]) {
      const err = await failure(safeFetch(url, options({ lookup })));
      expect(err.kind).toBe("blocked");
    }
    expect(lookup.calls).toEqual([]);
    expect(hits).toEqual([]);
  });

  it("defeats DNS rebinding: a name that was public when checked is refused when it is private at connect", async () => {
    // 1st answer (the check when the URL was accepted): public; later answers (the connect): loopback.
    const lookup = lookupFrom({ "rebind.test": [["93.184.216.34"], ["127.0.0.1"]] });
    const opts = options({ lookup });
    expect(await resolveAndCheck("rebind.test", opts, lookup)).toEqual({ ok: true, addresses: ["93.184.216.34"] });
    const err = await failure(safeFetch(at("rebind.test", "/ok"), opts));
    expect(err.kind).toBe("blocked");
    expect(lookup.calls).toEqual(["rebind.test", "rebind.test"]);
    expect(hits).toEqual([]);
  });

  it("checks again on every new connection, even to the same origin", async () => {
    policy.treatAsPublic.add("127.0.0.1");
    // Public at the first connect, private at the second (the redirect closes the connection).
    const lookup = lookupFrom({ "rebind.test": [["127.0.0.1"], ["127.0.0.2"]] });
    const err = await failure(safeFetch(at("rebind.test", "/redirect?to=/ok&close=1"), options({ lookup })));
    expect(err.kind).toBe("blocked");
    expect(lookup.calls).toEqual(["rebind.test", "rebind.test"]);
    expect(hits).toEqual(["/redirect"]);
  });

  it("ignores proxy settings from the environment", async () => {
    const saved = { HTTP_PROXY: process.env.HTTP_PROXY, http_proxy: process.env.http_proxy };
    process.env.HTTP_PROXY = "http://127.0.0.1:9";
    process.env.http_proxy = "http://127.0.0.1:9";
    try {
      const res = await safeFetch(at("public.test", "/ok"), options({ allowPrivateAddresses: true }));
      expect(await readAll(res.body)).toBe("hello world");
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });

  it("reports a refused connection as a network error", async () => {
    const closed = createServer();
    closed.listen(0, "127.0.0.1");
    await once(closed, "listening");
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const err = await failure(safeFetch(`http://public.test:${closedPort}/`, options({ allowPrivateAddresses: true })));
    expect(err.kind).toBe("network");
    expect(err.message).toBe("The request failed (ECONNREFUSED).");
  });

  it("reports an unknown name as a network error", async () => {
    const err = await failure(safeFetch(at("nowhere.test", "/ok"), options()));
    expect(err.kind).toBe("network");
    expect(err.message).toContain("ENOTFOUND");
  });
});

describe("redirects", () => {
  it("refuses a redirect to a literal loopback URL even though the first hop was allowed", async () => {
    policy.treatAsPublic.add("127.0.0.1");
    const to = encodeURIComponent(`http://127.0.0.1:${port}/ok`);
    const err = await failure(safeFetch(at("public.test", `/redirect?to=${to}`), options()));
    expect(err.kind).toBe("blocked");
    expect(err.status).toBe(302);
    expect(err.message).toMatch(/^Redirect refused: /);
    expect(hits).toEqual(["/redirect"]);
  });

  it("refuses a redirect to a name resolving to a private address (at connect time)", async () => {
    policy.treatAsPublic.add("127.0.0.1");
    const lookup = names();
    const to = encodeURIComponent(at("private.test", "/ok"));
    const err = await failure(safeFetch(at("public.test", `/redirect?to=${to}`), options({ lookup })));
    expect(err.kind).toBe("blocked");
    expect(lookup.calls).toEqual(["public.test", "private.test"]);
    expect(hits).toEqual(["/redirect"]);
  });

  it("refuses redirects to localhost, other schemes and URLs with credentials, without echoing them", async () => {
    policy.treatAsPublic.add("127.0.0.1");
    for (const target of [
      `http://localhost:${port}/ok`,
      "file:///etc/passwd",
      "ftp://public.test/",
      `http://alice:s3cr3t@public.test:${port}/ok`,
    ]) {
      const err = await failure(safeFetch(at("public.test", `/redirect?to=${encodeURIComponent(target)}`), options()));
      expect(err.kind).toBe("blocked");
      expect(err.message).not.toContain("s3cr3t");
      expect(err.message).not.toContain("alice");
    }
    expect(hits.every((p) => p === "/redirect")).toBe(true);
  });

  it("refuses http URLs when http is not allowed", async () => {
    const err = await failure(safeFetch(at("public.test", "/ok"), options({ allowHttp: false })));
    expect(err.kind).toBe("blocked");
    expect(err.message).toBe("The URL must use https.");
  });

  it("follows up to maxRedirects, then fails with kind redirects", async () => {
    const opts = options({ allowPrivateAddresses: true });
    const res = await safeFetch(at("public.test", "/chain/3"), { ...opts, maxRedirects: 3 });
    expect(res.status).toBe(200);
    expect(res.url).toBe(at("public.test", "/chain/0"));
    expect(await readAll(res.body)).toBe("end of chain");

    hits.length = 0;
    const err = await failure(safeFetch(at("public.test", "/chain/3"), { ...opts, maxRedirects: 2 }));
    expect(err.kind).toBe("redirects");
    expect(err.status).toBe(302);
    expect(hits).toEqual(["/chain/3", "/chain/2", "/chain/1"]);
  });

  it("returns the 3xx untouched with maxRedirects 0", async () => {
    const res = await safeFetch(
      at("public.test", "/chain/2"),
      options({ allowPrivateAddresses: true, maxRedirects: 0 }),
    );
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/chain/1");
    expect(res.url).toBe(at("public.test", "/chain/2"));
    expect(await readAll(res.body)).toBe("");
    expect(hits).toEqual(["/chain/2"]);
  });

  it("does not check a 3xx target it does not follow", async () => {
    policy.treatAsPublic.add("127.0.0.1");
    const to = encodeURIComponent("http://127.0.0.1/");
    const res = await safeFetch(at("public.test", `/redirect?to=${to}`), options({ maxRedirects: 0 }));
    expect(res.status).toBe(302);
    res.body.destroy();
  });

  it("switches 301/302/303 to GET without a body and keeps method and body on 307/308", async () => {
    const opts = options({ allowPrivateAddresses: true, method: "POST", body: '{"a":1}' });
    opts.headers = { "content-type": "application/json" };
    for (const [status, method, body] of [
      [301, "GET", ""],
      [302, "GET", ""],
      [303, "GET", ""],
      [307, "POST", '{"a":1}'],
      [308, "POST", '{"a":1}'],
    ] as const) {
      const res = await safeFetch(at("public.test", `/redirect?status=${status}&to=/echo`), opts);
      const echo = JSON.parse(await readAll(res.body));
      expect([status, echo.method, echo.body]).toEqual([status, method, body]);
      expect(echo.headers["content-type"]).toBe(method === "GET" ? undefined : "application/json");
    }
  });

  it("drops credential headers when the origin changes, keeps them on the same origin", async () => {
    const opts = options({
      allowPrivateAddresses: true,
      headers: { Authorization: "Bearer t0ken", Cookie: "a=b", "X-Custom": "kept" },
    });
    const same = await safeFetch(at("public.test", "/redirect?to=/echo"), opts);
    const sameEcho = JSON.parse(await readAll(same.body));
    expect(sameEcho.headers.authorization).toBe("Bearer t0ken");

    const to = encodeURIComponent(at("other.test", "/echo"));
    const cross = await safeFetch(at("public.test", `/redirect?to=${to}`), opts);
    expect(cross.url).toBe(at("other.test", "/echo"));
    const crossEcho = JSON.parse(await readAll(cross.body));
    expect(crossEcho.headers.authorization).toBeUndefined();
    expect(crossEcho.headers.cookie).toBeUndefined();
    expect(crossEcho.headers["x-custom"]).toBe("kept");
  });

  it("keeps no cookies and asks for identity encoding unless told otherwise", async () => {
    const opts = options({ allowPrivateAddresses: true });
    const res = await safeFetch(at("public.test", "/redirect?cookie=1&to=/echo"), opts);
    const echo = JSON.parse(await readAll(res.body));
    expect(echo.headers.cookie).toBeUndefined();
    expect(echo.headers["accept-encoding"]).toBe("identity");

    const custom = await safeFetch(at("public.test", "/echo"), { ...opts, headers: { "Accept-Encoding": "gzip" } });
    expect(JSON.parse(await readAll(custom.body)).headers["accept-encoding"]).toBe("gzip");
  });
});

describe("deadline", () => {
  it("times out when headers never come", async () => {
    const started = Date.now();
    const err = await failure(
      safeFetch(at("public.test", "/hang"), options({ allowPrivateAddresses: true, timeoutMs: 300 })),
    );
    const elapsed = Date.now() - started;
    expect(err.kind).toBe("timeout");
    expect(err.message).toBe("The request did not complete within 300 ms.");
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2000);
  });

  it("times out a body that trickles forever (the deadline covers the body)", async () => {
    const started = Date.now();
    const res = await safeFetch(
      at("public.test", "/trickle"),
      options({ allowPrivateAddresses: true, timeoutMs: 400 }),
    );
    expect(res.status).toBe(200);
    const err = await failure(readAll(res.body));
    const elapsed = Date.now() - started;
    expect(err.kind).toBe("timeout");
    expect(elapsed).toBeGreaterThanOrEqual(350);
    expect(elapsed).toBeLessThan(2500);
  });

  it("errors an unconsumed body at the deadline without an unhandled error", async () => {
    const res = await safeFetch(
      at("public.test", "/trickle"),
      options({ allowPrivateAddresses: true, timeoutMs: 200 }),
    );
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(res.body.destroyed).toBe(true);
    expect(res.body.errored).toBeInstanceOf(OutboundError);
    expect((res.body.errored as OutboundError).kind).toBe("timeout");
  });

  it("stops when the caller's signal aborts", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const err = await failure(
      safeFetch(at("public.test", "/hang"), options({ allowPrivateAddresses: true, signal: controller.signal })),
    );
    expect(err.kind).toBe("network");
    expect(err.message).toBe("The request was aborted.");

    const already = AbortSignal.abort();
    const err2 = await failure(
      safeFetch(at("public.test", "/ok"), options({ allowPrivateAddresses: true, signal: already })),
    );
    expect(err2.message).toBe("The request was aborted.");
  });
});

describe("size limit", () => {
  it("fails before reading when Content-Length is over maxBytes", async () => {
    const err = await failure(
      safeFetch(at("public.test", "/declared-large"), options({ allowPrivateAddresses: true, maxBytes: 1000 })),
    );
    expect(err.kind).toBe("too_large");
    expect(err.status).toBe(200);
    expect(err.message).toBe("The response body is larger than 1000 bytes.");
  });

  it("errors the stream when a chunked body goes over maxBytes", async () => {
    const res = await safeFetch(
      at("public.test", "/chunked-large"),
      options({ allowPrivateAddresses: true, maxBytes: 4096 }),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("content-length")).toBeNull();
    const err = await failure(readAll(res.body));
    expect(err.kind).toBe("too_large");
  });

  it("accepts a body of exactly maxBytes", async () => {
    const res = await safeFetch(at("public.test", "/exact"), options({ allowPrivateAddresses: true, maxBytes: 4096 }));
    expect((await readAll(res.body)).length).toBe(4096);
  });
});

describe("bad URLs", () => {
  it("refuses non-ASCII and garbage URLs cleanly, without a lookup", async () => {
    const lookup = names();
    for (const url of [
      "",
      "not a url",
      "public.test/ok",
      `http://exa mple.test:${port}/`,
      "http://bücher.test/",
      `http://public.test:${port}/vidéo`,
      "http://１２７.０.０.１/",
      "http://public.test:99999/",
      "http://[::1/",
      "http://public.test/#fragment",
      "\u{1F4A9}",
      "http://\uD800/",
    ]) {
      const err = await failure(safeFetch(url, options({ lookup, allowPrivateAddresses: true })));
      expect(err.kind).toBe("blocked");
      expect(err.message).toMatch(/^The .+\.$/);
    }
    expect(lookup.calls).toEqual([]);
  });
});

describe("readSnippet", () => {
  it("reads at most limit bytes and destroys the stream", async () => {
    const res = await safeFetch(at("public.test", "/ok"), options({ allowPrivateAddresses: true }));
    expect(await readSnippet(res, 5)).toBe("hello");
    expect(res.body.destroyed).toBe(true);
  });

  it("returns the whole body when it is shorter, and drops a character cut at the limit", async () => {
    const opts = options({ allowPrivateAddresses: true });
    expect(await readSnippet(await safeFetch(at("public.test", "/ok"), opts), 1024)).toBe("hello world");
    // "héllo": h (1 byte) é (2 bytes); a 2-byte limit cuts é in half.
    expect(await readSnippet(await safeFetch(at("public.test", "/utf8"), opts), 2)).toBe("h");
    expect(await readSnippet(await safeFetch(at("public.test", "/utf8"), opts), 3)).toBe("hé");
  });

  it("returns what it read when the body fails", async () => {
    const res = await safeFetch(
      at("public.test", "/trickle"),
      options({ allowPrivateAddresses: true, timeoutMs: 300 }),
    );
    const text = await readSnippet(res, 1_000_000);
    expect(text).toMatch(/^x+$/);
  });
});

describe("GuardedPool", () => {
  /** Sockets the local server accepted from now on. */
  function countConnections(): { readonly count: number; stop(): void } {
    let count = 0;
    const onConnection = () => count++;
    server.on("connection", onConnection);
    return {
      get count() {
        return count;
      },
      stop: () => server.off("connection", onConnection),
    };
  }

  it("reuses one kept-alive connection for 10 calls in turn; without a pool each call connects", async () => {
    policy.treatAsPublic.add("127.0.0.1");
    const lookup = lookupFrom({ "public.test": [["127.0.0.1"]] });
    const pool = new GuardedPool({ allowHttp: true, allowPrivateAddresses: false, timeoutMs: 5000, lookup });
    const pooled = countConnections();
    try {
      for (let i = 0; i < 10; i++) {
        const res = await safeFetch(at("public.test", "/ok"), options({ lookup, pool }));
        expect(await readAll(res.body)).toBe("hello world");
        // undici hands the connection back to its pool a moment after the body ended.
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      expect(pooled.count).toBe(1);
      expect(lookup.calls).toEqual(["public.test"]);
    } finally {
      pooled.stop();
      await pool.close();
    }
    const unpooled = countConnections();
    try {
      for (let i = 0; i < 10; i++) {
        const res = await safeFetch(at("public.test", "/ok"), options({ lookup }));
        expect(await readAll(res.body)).toBe("hello world");
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      expect(unpooled.count).toBe(10);
    } finally {
      unpooled.stop();
    }
  });

  it("checks every new connection it opens: a name that turned private is refused", async () => {
    policy.treatAsPublic.add("127.0.0.1");
    // Public at the first connect; the server closes that connection; private at the next.
    const lookup = lookupFrom({ "rebind.test": [["127.0.0.1"], ["127.0.0.2"]] });
    const pool = new GuardedPool({ allowHttp: true, allowPrivateAddresses: false, timeoutMs: 5000, lookup });
    try {
      const res = await safeFetch(
        at("rebind.test", "/redirect?to=/ok&close=1"),
        options({ lookup, pool, maxRedirects: 0 }),
      );
      expect(res.status).toBe(302);
      await readAll(res.body);
      const err = await failure(safeFetch(at("rebind.test", "/ok"), options({ lookup, pool })));
      expect(err.kind).toBe("blocked");
      expect(lookup.calls).toEqual(["rebind.test", "rebind.test"]);
      expect(hits).toEqual(["/redirect"]);
    } finally {
      await pool.close();
    }
  });

  it("refuses a forbidden literal address like an unpooled call", async () => {
    const pool = new GuardedPool({ allowHttp: true, allowPrivateAddresses: false, timeoutMs: 5000 });
    try {
      // checkUrl refuses literal loopback before the pool is reached; the pool's connector is the
      // second line (a name resolving to it), covered above.
      const err = await failure(safeFetch(`http://127.0.0.1:${port}/ok`, options({ pool })));
      expect(err.kind).toBe("blocked");
      expect(hits).toEqual([]);
    } finally {
      await pool.close();
    }
  });
});
