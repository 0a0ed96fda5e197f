/**
 * The `ceiling` scenario: the least a keyed read can cost on Framegate's own stack (minimal-server.mjs:
 * Hono on @hono/node-server, better-sqlite3 with prepared statements, a SHA-256 key lookup and one
 * task row, nothing else). Measured like `get`, between baseline runs, it shows how much of the
 * gap to bare node:http is the stack's and how much is Framegate's.
 */
import type { LoadFigures, LoadSpec } from "./load.js";
import { startScriptServer } from "./processes.js";

export async function measureCeiling(
  measure: (spec: Omit<LoadSpec, "duration" | "amount">) => Promise<LoadFigures>,
  connections: number,
): Promise<LoadFigures> {
  const { server, info } = await startScriptServer("minimal-server.mjs");
  try {
    const { key, taskId } = info as unknown as { key: string; taskId: string };
    return await measure({
      url: `${server.url}/api/v1/generations/${taskId}`,
      connections,
      headers: { authorization: `Bearer ${key}` },
      serverPid: server.pid,
    });
  } finally {
    await server.stop();
  }
}
