// The stack's ceiling for `npm run bench`: the least a keyed read can do on Framegate's own
// libraries (Hono on @hono/node-server, better-sqlite3 with prepared statements, WAL). It looks
// the API key up by its SHA-256 and reads one task row, as GET /api/v1/generations/{id} does,
// and nothing else: no logging, request ids, rate limits, key cache, scopes or serialization.
// It prints its port and a key and task id to read on stdout, like hello-server.mjs.
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import Database from "better-sqlite3";
import { Hono } from "hono";

const dir = mkdtempSync(join(tmpdir(), "framegate-bench-minimal-"));
const db = new Database(join(dir, "minimal.db"));
db.pragma("journal_mode = WAL");
db.pragma("synchronous = NORMAL");
db.exec(`create table api_keys (hash text primary key, account_id text not null, revoked_at text);
create table tasks (id text primary key, account_id text not null, status text not null, prompt text not null,
  params text not null, created_at text not null, updated_at text not null)`);
const key = `fg_${randomBytes(24).toString("hex")}`;
const sha256 = (text) => createHash("sha256").update(text).digest("hex");
db.prepare("insert into api_keys values (?, ?, null)").run(sha256(key), "acct_1");
const taskId = `task_${randomBytes(8).toString("hex")}`;
const now = new Date().toISOString();
db.prepare("insert into tasks values (?, ?, ?, ?, ?, ?, ?)").run(
  taskId,
  "acct_1",
  "pending",
  "a task to read",
  '{"duration":"5","aspect_ratio":"16:9","sound":"false"}',
  now,
  now,
);
const keyByHash = db.prepare("select account_id from api_keys where hash = ? and revoked_at is null");
const taskById = db.prepare("select * from tasks where id = ? and account_id = ?");

const app = new Hono();
app.get("/api/v1/generations/:id", (c) => {
  const header = c.req.header("authorization") ?? "";
  const found = header.startsWith("Bearer ") ? keyByHash.get(sha256(header.slice(7))) : undefined;
  if (!found) return c.json({ error: { code: "unauthorized" } }, 401);
  const row = taskById.get(c.req.param("id"), found.account_id);
  if (!row) return c.json({ error: { code: "not_found" } }, 404);
  return c.json({ ...row, params: JSON.parse(row.params) });
});
const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, (info) => {
  process.stdout.write(`${JSON.stringify({ port: info.port, key, taskId })}\n`);
});
process.on("SIGTERM", () =>
  server.close(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  }),
);
