import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createSecretFileOnce, readSecretFile } from "./secret-file.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function secretPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "framegate-secret-file-"));
  dirs.push(dir);
  return join(dir, "secrets", "signing_secret");
}

describe("createSecretFileOnce", () => {
  it("creates the file 0600 in a 0700 directory and reads it back", async () => {
    const path = secretPath();
    expect(await readSecretFile(path)).toBeUndefined();
    expect(await createSecretFileOnce(path, "first-value")).toBe("first-value");
    expect(readFileSync(path, "utf8")).toBe("first-value\n");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(path, "..")).mode & 0o777).toBe(0o700);
  });

  it("never replaces an existing secret", async () => {
    const path = secretPath();
    await createSecretFileOnce(path, "first-value");
    expect(await createSecretFileOnce(path, "second-value")).toBe("first-value");
    expect(await readSecretFile(path)).toBe("first-value");
  });

  it("lets exactly one of many concurrent creators win, and all of them agree on its value", async () => {
    const path = secretPath();
    const values = Array.from({ length: 50 }, (_, i) => `candidate-${i}`);
    const results = await Promise.all(values.map((v) => createSecretFileOnce(path, v)));
    expect(new Set(results).size).toBe(1);
    expect(values).toContain(results[0]);
    expect(await readSecretFile(path)).toBe(results[0]);
    // No temp file is left behind by the losers.
    expect(readdirSync(join(path, ".."))).toEqual(["signing_secret"]);
  });
});
