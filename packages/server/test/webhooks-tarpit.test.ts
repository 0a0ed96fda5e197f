/**
 * A hostile neighbour's webhooks cannot stall the service (issue #11). Account A points 40
 * endpoints at a tarpit (a loopback TCP server that accepts connections and never answers) and
 * fires a test event at each; account C fires several test events at each of two tarpit
 * endpoints. Then account B creates a generation. Expected:
 * - B's task finishes while the tarpit still holds every connection it was given, i.e. inside
 *   the first delivery timeout: deliveries run on runners of their own, never on the
 *   generation runners;
 * - the tarpit never holds more than WEBHOOK_MAX_INFLIGHT_PER_ACCOUNT connections from one
 *   account, nor more than WEBHOOK_MAX_INFLIGHT_PER_ENDPOINT to one endpoint (delivery slots);
 * - waiting for a slot is not an attempt: nothing is logged for deliveries that never connected.
 * B's time from create to succeeded is printed, not asserted.
 */
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer, waitForTask } from "./harness.js";
import { pollUntil, WebhookReceiver } from "./webhook-receiver.js";

const PER_ENDPOINT = 2;
const PER_ACCOUNT = 4;
/** Longer than the default 10 s: a generation on a busy test machine still fits well inside it. */
const TIMEOUT_MS = 20_000;

/** Accepts connections and never answers; counts what is open, by path prefix and by path. */
class Tarpit {
  readonly open = new Set<Socket>();
  private readonly pathOf = new Map<Socket, string>();
  /** Connections closed so far (by the sender giving up). */
  closed = 0;
  maxOpen = 0;
  private readonly maxByKey = new Map<string, number>();

  private constructor(private readonly server: Server) {}

  static async start(): Promise<Tarpit> {
    let tarpit: Tarpit | undefined;
    const server = createServer((socket) => tarpit?.accept(socket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    tarpit = new Tarpit(server);
    return tarpit;
  }

  url(path: string): string {
    const address = this.server.address() as { port: number };
    return `http://127.0.0.1:${address.port}${path}`;
  }

  /** Connections open now whose request path starts with `prefix`. */
  openUnder(prefix: string): number {
    return [...this.pathOf.values()].filter((p) => p.startsWith(prefix)).length;
  }

  /** The most connections ever open at once under `prefix` (a group of paths, or one path). */
  maxUnder(prefix: string): number {
    return this.maxByKey.get(prefix) ?? 0;
  }

  async close(): Promise<void> {
    for (const socket of this.open) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    this.open.add(socket);
    this.maxOpen = Math.max(this.maxOpen, this.open.size);
    let head = "";
    socket.on("data", (chunk) => {
      if (this.pathOf.has(socket)) return;
      head += chunk.toString("latin1");
      const line = /^[A-Z]+ (\S+) HTTP\/1\.[01]\r\n/.exec(head);
      if (!line?.[1]) return;
      this.pathOf.set(socket, line[1]);
      this.record(line[1]);
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.open.delete(socket);
      this.pathOf.delete(socket);
      this.closed++;
    });
  }

  /** Updates the maxima of every prefix of this path ("/a/", "/a/7"). */
  private record(path: string): void {
    const group = path.slice(0, path.indexOf("/", 1) + 1);
    for (const key of [group, path]) this.maxByKey.set(key, Math.max(this.maxUnder(key), this.openUnder(key)));
  }
}

describe("webhook tarpit: one tenant's dead endpoints", () => {
  let t: TestServer;
  let tarpit: Tarpit;

  beforeAll(async () => {
    tarpit = await Tarpit.start();
    t = await startTestServer({
      WEBHOOK_ALLOW_INSECURE_URLS: "true",
      WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS),
      WEBHOOK_MAX_INFLIGHT_PER_ENDPOINT: String(PER_ENDPOINT),
      WEBHOOK_MAX_INFLIGHT_PER_ACCOUNT: String(PER_ACCOUNT),
      RATE_LIMIT_CREATE_PER_MIN: "0",
      RATE_LIMIT_READ_PER_MIN: "0",
      // The tenant holds more endpoints than the default quota allows, and fires a test at each.
      RATE_LIMIT_WRITE_PER_MIN: "0",
      ACCOUNT_MAX_WEBHOOK_ENDPOINTS: "100",
    });
  });
  afterAll(async () => {
    // The tarpit goes first: its hanging deliveries then fail at once instead of holding the
    // server's shutdown for the delivery timeout.
    await tarpit?.close();
    await t?.close();
  });

  async function endpoint(key: string, url: string): Promise<string> {
    const res = await t.request("/api/v1/webhooks", { key, json: { url } });
    expect(res.status, res.text).toBe(201);
    return res.body.id;
  }

  async function fireTest(key: string, id: string): Promise<void> {
    const res = await t.request(`/api/v1/webhooks/${id}/test`, { key, method: "POST" });
    expect(res.status, res.text).toBe(202);
  }

  it("another tenant's generation finishes while the tarpit holds the deliveries; in-flight caps hold", async () => {
    const a = await t.createAccount(0);
    const aEndpoints: string[] = [];
    for (let i = 0; i < 40; i++) aEndpoints.push(await endpoint(a.key, tarpit.url(`/a/${i}`)));
    for (const id of aEndpoints) await fireTest(a.key, id);
    // C: several events to each of two endpoints (the per-endpoint cap binds, not the account's).
    const c = await t.createAccount(0);
    const cEndpoints = [await endpoint(c.key, tarpit.url("/c/0")), await endpoint(c.key, tarpit.url("/c/1"))];
    for (const id of cEndpoints) for (let i = 0; i < 4; i++) await fireTest(c.key, id);

    // Both tenants hold every slot they may have: A its account's share, C both endpoints' shares.
    const saturated = () =>
      tarpit.openUnder("/a/") === PER_ACCOUNT &&
      tarpit.openUnder("/c/0") === PER_ENDPOINT &&
      tarpit.openUnder("/c/1") === PER_ENDPOINT;
    const deadline = Date.now() + 15_000;
    while (!saturated()) {
      if (Date.now() > deadline) {
        throw new Error(
          `tarpit not saturated: A ${tarpit.openUnder("/a/")}, C ${tarpit.openUnder("/c/0")}+${tarpit.openUnder("/c/1")}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(tarpit.closed).toBe(0);

    const b = await t.createAccount(1000);
    const started = Date.now();
    const created = await t.request("/api/v1/generations", {
      key: b.key,
      json: { model: "kling-2-6", prompt: "a quiet harbour at dusk" },
    });
    expect(created.status, created.text).toBe(202);
    const task = await waitForTask(t, b.key, created.body.id, 2 * TIMEOUT_MS);
    const elapsedMs = Date.now() - started;
    console.log(
      `tarpit: B's generation went from create to ${task.status} in ${elapsedMs} ms ` +
        `(tarpit holding ${tarpit.open.size} connections, max ${tarpit.maxOpen})`,
    );
    expect(task.status).toBe("succeeded");
    // Every delivery the tarpit took is still hanging: B did not wait for any of them to time out.
    expect(tarpit.closed).toBe(0);
    expect(tarpit.open.size).toBeGreaterThan(0);

    // The caps, over the whole run so far.
    expect(tarpit.maxUnder("/a/")).toBe(PER_ACCOUNT);
    expect(tarpit.maxUnder("/c/")).toBeLessThanOrEqual(PER_ACCOUNT);
    for (const path of ["/c/0", "/c/1"]) expect(tarpit.maxUnder(path)).toBe(PER_ENDPOINT);
    // Deliveries still waiting for a slot have made no attempt, so none is logged yet.
    for (const id of aEndpoints.slice(0, 8)) {
      const log = await t.request(`/api/v1/webhooks/${id}/deliveries`, { key: a.key });
      expect(log.status, log.text).toBe(200);
      expect(log.body.data).toEqual([]);
    }
  });
});

describe("waiting for a delivery slot", () => {
  it("is not an attempt: deliveries that waited go out once each, attempt 1, one at a time per endpoint", async () => {
    const t = await startTestServer({
      WEBHOOK_ALLOW_INSECURE_URLS: "true",
      WEBHOOK_MAX_INFLIGHT_PER_ENDPOINT: "1",
      RATE_LIMIT_CREATE_PER_MIN: "0",
      RATE_LIMIT_READ_PER_MIN: "0",
    });
    // A slow endpoint: each delivery holds the endpoint's only slot for a while.
    let overlapped = 0;
    const receiver = await WebhookReceiver.start((req) => {
      // Every earlier request was answered before this one arrived (its slot was given back).
      if (receiver.requests.slice(0, req.index).some((r) => r.answeredStatus === undefined)) overlapped++;
      return { status: 200, delayMs: 300 };
    });
    try {
      const { key } = await t.createAccount(0);
      const created = await t.request("/api/v1/webhooks", { key, json: { url: receiver.at("/slow") } });
      expect(created.status, created.text).toBe(201);
      const id = created.body.id;
      for (let i = 0; i < 4; i++) {
        const res = await t.request(`/api/v1/webhooks/${id}/test`, { key, method: "POST" });
        expect(res.status, res.text).toBe(202);
      }
      await receiver.waitUntil((r) => r.acknowledged().length === 4, 30_000, "4 deliveries");
      expect(overlapped).toBe(0);
      // The last attempt is logged just after its answer arrived.
      const deliveries = await pollUntil(
        async () => {
          const log = await t.request(`/api/v1/webhooks/${id}/deliveries?limit=100`, { key });
          expect(log.status, log.text).toBe(200);
          return log.body.data.length >= 4 ? log.body.data : undefined;
        },
        10_000,
        "4 logged deliveries",
      );
      expect(deliveries).toHaveLength(4);
      for (const delivery of deliveries) {
        expect(delivery).toMatchObject({ attempt: 1, status: "succeeded" });
      }
    } finally {
      await t.close();
      await receiver.close();
    }
  });
});
