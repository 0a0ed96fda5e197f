/** JSON or pretty logs: the format each destination gets, and the same redaction in both. */
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, resolveLogFormat } from "./logger.js";

function sink(isTTY: boolean) {
  const out = { text: "" };
  const stream = new Writable({
    write(chunk, _encoding, done) {
      out.text += String(chunk);
      done();
    },
  }) as Writable & { isTTY?: boolean };
  if (isTTY) stream.isTTY = true;
  return { stream, out };
}

const SECRET = "rvya_sk_abcdefghijklmnopqrstuvwxyz0123";
const secretFields = {
  authorization: `Bearer ${SECRET}`,
  req: { headers: { authorization: `Bearer ${SECRET}` } },
  key: SECRET,
  account: { apiKey: SECRET, secret: SECRET },
  signingSecret: SECRET,
  adminToken: SECRET,
  token: SECRET,
};

describe("createLogger", () => {
  it("picks pretty for a terminal and JSON otherwise, unless told", () => {
    expect(resolveLogFormat("auto", sink(true).stream)).toBe("pretty");
    expect(resolveLogFormat("auto", sink(false).stream)).toBe("json");
    expect(resolveLogFormat("json", sink(true).stream)).toBe("json");
    expect(resolveLogFormat("pretty", sink(false).stream)).toBe("pretty");
  });

  it("writes one JSON object a line by default", () => {
    const { stream, out } = sink(false);
    createLogger("info", stream, "auto").info({ requestId: "req_1", status: 200 }, "request");
    const line = JSON.parse(out.text.trim());
    expect(line).toMatchObject({ level: 30, msg: "request", requestId: "req_1", status: 200, service: "framegate" });
  });

  it("writes readable lines in pretty mode: level, message, fields; no JSON object a line", () => {
    const { stream, out } = sink(false);
    const log = createLogger("info", stream, "pretty");
    log.info({ requestId: "req_1", status: 200 }, "request");
    log.warn("HOST=0.0.0.0 listens on every interface");
    const lines = out.text.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: request \{"requestId":"req_1","status":200\}$/);
    expect(lines[1]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: HOST=0\.0\.0\.0 listens on every interface$/);
    // No colour codes when the destination is not a terminal.
    expect(out.text).not.toContain("\u001b[");
    expect(() => JSON.parse(lines[0] as string)).toThrow();
  });

  it("colours pretty lines on a terminal", () => {
    const { stream, out } = sink(true);
    createLogger("info", stream, "auto").info("hello");
    expect(out.text).toContain("\u001b[");
  });

  it("censors the same secrets in both formats", () => {
    for (const format of ["json", "pretty"] as const) {
      const { stream, out } = sink(format === "pretty");
      createLogger("info", stream, format).info(secretFields, "with secrets");
      expect(out.text, format).toContain("with secrets");
      expect(out.text, format).not.toContain(SECRET);
      expect(out.text.match(/\[redacted\]/g)?.length, format).toBe(8);
    }
  });
});
