/**
 * A client that goes away mid-request (disconnect, or a body slower than REQUEST_TIMEOUT) is not
 * a server error: one info line with the request id, no stack at error level, nothing stored.
 */
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { type RunningServer, startServer } from "../src/server.js";
import { expectNothingStored, storageState } from "./files-helpers.js";
import { ADMIN_TOKEN, TEST_ENV, type TestServer } from "./harness.js";
import { dropTestDatabase, testStoreEnv } from "./test-store.js";

interface LogLine {
  level: number;
  msg: string;
  requestId?: string;
  status?: number;
  clientGone?: string;
  err?: unknown;
}

describe("client aborts and body timeouts", () => {
  const lines: LogLine[] = [];
  let server: RunningServer;
  let dir: string;
  let key: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "framegate-loghygiene-"));
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split("\n")) if (line.trim()) lines.push(JSON.parse(line) as LogLine);
        done();
      },
    });
    const config = loadConfig({
      ...TEST_ENV,
      DATA_DIR: dir,
      ...(await testStoreEnv(dir)),
      LOG_LEVEL: "debug",
      REQUEST_TIMEOUT: "1s",
    });
    server = await startServer(config, { log: createLogger("debug", sink) });
    const admin = async (path: string, body: unknown) => {
      const res = await fetch(`${server.url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return (await res.json()) as { id: string; key: string };
    };
    const account = await admin("/admin/v1/accounts", { name: "a", credits: 100 });
    key = (await admin(`/admin/v1/accounts/${account.id}/keys`, {})).key;
  });

  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
    await dropTestDatabase(dir);
  });

  /** Sends the head and part of a body on a raw socket; `hangUpAfterMs` undefined: waits for the server to close. */
  function partialRequest(path: string, headers: string, body: string, hangUpAfterMs?: number) {
    const port = Number(new URL(server.url).port);
    return new Promise<{ closedByServer: boolean }>((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.write(
          `POST ${path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${key}\r\n${headers}\r\n${body}`,
        );
        if (hangUpAfterMs !== undefined)
          setTimeout(() => {
            socket.destroy();
            resolve({ closedByServer: false });
          }, hangUpAfterMs);
      });
      socket.on("error", () => {});
      // Read whatever the server answers (a 408): a paused socket never reports its close.
      socket.resume();
      socket.on("close", () => resolve({ closedByServer: hangUpAfterMs === undefined }));
    });
  }

  const upload = {
    headers: "Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: 100000\r\n",
    body:
      '--XX\r\nContent-Disposition: form-data; name="kind"\r\n\r\nimage\r\n' +
      '--XX\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n' +
      "\x89PNG\r\n\x1a\n....",
  };

  async function requestLinesFor(route: string): Promise<LogLine[]> {
    // The request line is written when the handler has seen the disconnect.
    for (let i = 0; i < 100; i++) {
      const found = lines.filter((l) => l.msg === "request" && (l as { route?: string }).route === route);
      if (found.length > 0) return found;
      await new Promise((r) => setTimeout(r, 50));
    }
    return [];
  }

  function linesOfRequest(requestId: string | undefined) {
    return lines.filter((l) => l.requestId === requestId);
  }

  it("a disconnect mid-upload is one info line, not an error, and leaves no partial file", async () => {
    // The files helpers read a server's storage (local directory or bucket) through these two fields.
    const asTestServer = { server, dataDir: dir } as unknown as TestServer;
    const before = await storageState(asTestServer);
    await partialRequest("/api/v1/files", upload.headers, upload.body, 200);
    const [line] = await requestLinesFor("/api/v1/files");
    expect(line).toMatchObject({ level: 30, status: 499 });
    expect(line?.clientGone).toBeTruthy();
    expect(linesOfRequest(line?.requestId)).toHaveLength(1);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    await expectNothingStored(asTestServer, before, "an upload cut off by its client");
  });

  it("a JSON body that stops arriving is closed after REQUEST_TIMEOUT and logged once at info", async () => {
    const result = await partialRequest(
      "/api/v1/generations",
      "Content-Type: application/json\r\nContent-Length: 1000\r\n",
      '{"model":',
    );
    expect(result.closedByServer).toBe(true);
    const [line] = await requestLinesFor("/api/v1/generations");
    expect(line).toMatchObject({ level: 30, status: 499 });
    expect(linesOfRequest(line?.requestId)).toHaveLength(1);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  });
});
