/**
 * Lints the OpenAPI document with Redocly CLI (rules in redocly.yaml): builds it as the server
 * serves it, writes it to a temporary file, and runs `redocly lint` on that file. Exits with
 * redocly's status, so `npm run lint` fails on any error.
 *
 *   npm run lint:openapi
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildOpenApiDocument } from "@framegate/contract";

const root = fileURLToPath(new URL("..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "framegate-openapi-"));
try {
  const file = join(dir, "openapi.json");
  writeFileSync(file, JSON.stringify(buildOpenApiDocument(), null, 2));
  const redocly = join(root, "node_modules", ".bin", "redocly");
  const result = spawnSync(redocly, ["lint", file, "--config", join(root, "redocly.yaml")], {
    stdio: "inherit",
    cwd: root,
    // Keeps the run offline: no usage report to Redocly.
    env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" },
  });
  if (result.error) throw result.error;
  process.exitCode = result.status ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
