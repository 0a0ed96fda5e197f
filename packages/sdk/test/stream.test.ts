/**
 * Live status in the SDK against the real server: generations.stream(id) over Server-Sent Events
 * (with resume after a dropped connection), and waitFor / createAndWait holding their checks with
 * `Prefer: wait`, falling back to polling when the server does not hold them.
 */
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Framegate, NotFoundError, type Task } from "../src/index.js";
import { clientFor, startTestServer, type TestServer } from "./helpers.js";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ RATE_LIMIT_CREATE_PER_MIN: "0", RATE_LIMIT_READ_PER_MIN: "0" });
});
afterAll(async () => {
  await t?.close();
});

const SEQUENCE = { queued: 1, processing: 2, succeeded: 3, failed: 3 } as const;

async function collect(iterable: AsyncIterable<Task>): Promise<Task[]> {
  const seen: Task[] = [];
  for await (const task of iterable) seen.push(task);
  return seen;
}

/**
 * A streaming pass-through proxy that cuts the first event stream right after its first event,
 * the way a dropped connection looks to the client. It records each request's Last-Event-ID.
 */
async function droppingProxy(
  target: string,
): Promise<{ url: string; lastEventIds: (string | undefined)[]; server: Server }> {
  const lastEventIds: (string | undefined)[] = [];
  let streams = 0;
  const server = createServer((req, res) => {
    const isStream = req.url?.endsWith("/events") === true;
    if (isStream) lastEventIds.push(req.headers["last-event-id"] as string | undefined);
    const cut = isStream && streams++ === 0;
    const upstream = httpRequest(`${target}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.on("data", (chunk: Buffer) => {
        res.write(chunk);
        // Dropped a moment later, so the event itself reaches the client first.
        if (cut && chunk.toString().includes("data: ")) {
          setTimeout(() => {
            answer.destroy();
            res.destroy();
          }, 50);
        }
      });
      answer.on("end", () => res.end());
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, lastEventIds, server };
}

describe("generations.stream", () => {
  it("yields each state once, in order, and ends after the terminal one", async () => {
    const { client } = await clientFor(t, 1000);
    const created = await client.generations.create({ model: "kling-2-6", prompt: "streamed [sim:delay=1]" });
    const seen = await collect(client.generations.stream(created.id));
    const order = seen.map((task) => SEQUENCE[task.status]);
    expect(order).toEqual([...new Set(order)].sort());
    expect(seen.at(-1)?.status).toBe("succeeded");
    expect(seen.at(-1)).toEqual(await client.generations.retrieve(created.id));
    // A finished task: one event, then the end.
    const again = await collect(client.generations.stream(created.id));
    expect(again.map((task) => task.status)).toEqual(["succeeded"]);
  });

  it("resumes a dropped connection with Last-Event-ID: nothing twice, nothing skipped", async () => {
    const { key } = await clientFor(t, 1000);
    const proxy = await droppingProxy(t.url);
    try {
      const client = new Framegate({ apiKey: key, baseUrl: proxy.url });
      const created = await client.generations.create({ model: "kling-2-6", prompt: "dropped [sim:delay=1]" });
      const seen = await collect(client.generations.stream(created.id));
      const ids = seen.map((task) => SEQUENCE[task.status]);
      expect(ids).toEqual([...new Set(ids)].sort());
      expect(seen.at(-1)?.status).toBe("succeeded");
      expect(proxy.lastEventIds.length).toBeGreaterThanOrEqual(2);
      expect(proxy.lastEventIds[0]).toBeUndefined();
      // The reconnect named the last event the client had (it may have had two before the cut).
      expect(ids.slice(0, -1)).toContain(Number(proxy.lastEventIds[1]));
    } finally {
      proxy.server.closeAllConnections();
      proxy.server.close();
    }
  });

  it("another account's task is NotFoundError, thrown before anything is yielded", async () => {
    const { client: owner } = await clientFor(t, 1000);
    const { client: other } = await clientFor(t, 1000);
    const created = await owner.generations.create({ model: "kling-2-6", prompt: "private [sim:delay=0]" });
    await expect(collect(other.generations.stream(created.id))).rejects.toBeInstanceOf(NotFoundError);
  });

  it("stops when its signal aborts", async () => {
    const { client } = await clientFor(t, 1000);
    const created = await client.generations.create({ model: "kling-2-6", prompt: "long [sim:delay=30]" });
    const controller = new AbortController();
    const seen: Task[] = [];
    const run = (async () => {
      for await (const task of client.generations.stream(created.id, { signal: controller.signal })) {
        seen.push(task);
        controller.abort();
      }
    })();
    await expect(run).rejects.toMatchObject({ name: "AbortError" });
    expect(seen).toHaveLength(1);
  });
});

describe("waitFor with Prefer: wait", () => {
  /** A client whose requests are recorded, optionally with the Prefer header removed on the way. */
  function recordingClient(key: string, stripPrefer: boolean) {
    const gets: { prefer: string | null; at: number }[] = [];
    const started = Date.now();
    const client = new Framegate({
      apiKey: key,
      baseUrl: t.url,
      pollInterval: { first: 50, min: 100, max: 200 },
      fetch: (input, init) => {
        const headers = new Headers(init?.headers);
        if (init?.method === "GET") gets.push({ prefer: headers.get("prefer"), at: Date.now() - started });
        if (stripPrefer) headers.delete("prefer");
        return fetch(input, { ...init, headers });
      },
    });
    return { client, gets };
  }

  it("holds each check on the server: the change arrives with one or two reads, not a poll loop", async () => {
    const { key } = await clientFor(t, 1000);
    const { client, gets } = recordingClient(key, false);
    const task = await client.generations.createAndWait({ model: "kling-2-6", prompt: "held [sim:delay=1]" });
    expect(task.status).toBe("succeeded");
    expect(gets.length).toBeGreaterThanOrEqual(1);
    expect(gets.length).toBeLessThanOrEqual(2);
    for (const get of gets) expect(get.prefer).toMatch(/^wait=([1-9]|[1-5]\d|60)$/);
  });

  it("a server that says Preference-Applied but answers at once is polled, not hammered", async () => {
    const { key } = await clientFor(t, 1000);
    let gets = 0;
    const client = new Framegate({
      apiKey: key,
      baseUrl: t.url,
      pollInterval: { first: 50, min: 100, max: 200 },
      fetch: async (input, init) => {
        const headers = new Headers(init?.headers);
        if (init?.method !== "GET") return fetch(input, init);
        gets++;
        headers.delete("prefer");
        const answer = await fetch(input, { ...init, headers });
        const lying = new Headers(answer.headers);
        lying.set("preference-applied", "wait=60");
        return new Response(await answer.text(), { status: answer.status, headers: lying });
      },
    });
    const task = await client.generations.createAndWait({ model: "kling-2-6", prompt: "lied to [sim:delay=1]" });
    expect(task.status).toBe("succeeded");
    // Polling every 100-200 ms for about a second; a tight loop would make hundreds.
    expect(gets).toBeLessThan(30);
  });

  it("falls back to polling when the server does not hold the answer", async () => {
    const { key } = await clientFor(t, 1000);
    const { client, gets } = recordingClient(key, true);
    const task = await client.generations.createAndWait({ model: "kling-2-6", prompt: "polled [sim:delay=1]" });
    expect(task.status).toBe("succeeded");
    // Held checks would have needed one or two reads; polling every 100-200 ms needs several.
    expect(gets.length).toBeGreaterThan(3);
  });
});
