/**
 * In-process checks of the unreachable-server notices: said once per outage, with the socket error
 * code, ended by the next good read; on a TTY the live status line is cleared before the notice
 * and drawn again after it; nothing with --json.
 */
import { APIConnectionError, ServiceUnavailableError } from "@framegate/sdk";
import { afterEach, describe, expect, it, vi } from "vitest";
import { OutageNotice, outageReason } from "../src/outage.js";
import { Output } from "../src/output.js";
import { TaskStatusView } from "../src/progress.js";

const refused = () => {
  const socket = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" });
  return new APIConnectionError("Connection error (ECONNREFUSED).", {
    cause: new TypeError("fetch failed", { cause: socket }),
  });
};

afterEach(() => {
  vi.restoreAllMocks();
});

describe("OutageNotice", () => {
  it("says it once per outage, and once when it ends", () => {
    const said: string[] = [];
    const notice = new OutageNotice((line) => said.push(line));
    notice.succeeded();
    expect(said).toEqual([]);
    notice.failed(refused());
    notice.failed(refused());
    notice.failed(new ServiceUnavailableError("down", { status: 503, code: "service_unavailable" }));
    expect(notice.unreachable).toBe(true);
    notice.succeeded();
    notice.succeeded();
    notice.failed(new ServiceUnavailableError("Service unavailable.", { status: 503, code: "service_unavailable" }));
    expect(said).toEqual([
      "server unreachable (ECONNREFUSED), retrying…",
      "connection to the server is back",
      "server not answering (HTTP 503 service_unavailable), retrying…",
    ]);
  });

  it("names the socket error, else the error code", () => {
    expect(outageReason(refused())).toBe("ECONNREFUSED");
    expect(outageReason(new APIConnectionError())).toBe("api_connection_error");
  });
});

describe("TaskStatusView.note", () => {
  class FakeTty {
    isTTY = true;
    chunks: string[] = [];
    write(chunk: string) {
      this.chunks.push(chunk);
      return true;
    }
  }
  const task = { id: "task_abc", status: "processing" } as unknown as Parameters<TaskStatusView["update"]>[0];

  it("on a TTY clears the live line, writes to stderr, and redraws; nothing with --json", () => {
    const stderr: string[] = [];
    vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
      stderr.push(String(chunk));
      return true;
    });
    const tty = new FakeTty();
    const view = new TaskStatusView(new Output({}, tty as unknown as NodeJS.WriteStream));
    view.update(task);
    const before = tty.chunks.length;
    view.note("server unreachable (ECONNREFUSED), retrying…");
    view.stop();
    expect(stderr).toEqual(["server unreachable (ECONNREFUSED), retrying…\n"]);
    expect(tty.chunks[before]).toBe("\r\x1b[2K");
    const redrawn = tty.chunks[before + 1] ?? "";
    expect(redrawn.startsWith("\r\x1b[2K")).toBe(true);
    expect(redrawn).toMatch(/ task_abc processing /);

    const quiet = new TaskStatusView(new Output({ json: true }, new FakeTty() as unknown as NodeJS.WriteStream));
    quiet.note("server unreachable (ECONNREFUSED), retrying…");
    expect(stderr).toHaveLength(1);
  });
});
