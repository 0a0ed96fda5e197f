/** `npm run demo`'s main function: embedded server, reference image, image-to-video with sound, MP4 saved. */
import { mkdtempSync, rmSync } from "node:fs";
import { stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runDemo } from "../../../scripts/demo.js";
import { probeMp4 } from "../../server/src/media/mp4-probe.js";

describe("npm run demo", () => {
  const dir = mkdtempSync(join(tmpdir(), "framegate-demo-test-"));
  const cleanup: string[] = [dir];
  afterAll(() => {
    for (const d of cleanup) rmSync(d, { recursive: true, force: true });
  });

  it("generates an image-to-video MP4 with sound through the SDK and stops the server", {
    timeout: 60_000,
  }, async () => {
    const lines: string[] = [];
    const out = join(dir, "demo.mp4");
    const result = await runDemo({
      out,
      log: (line) => lines.push(line),
      serverEnv: { SIM_SIZE_16_9: "256x144", SIM_FPS: "8" },
    });
    cleanup.push(dirname(result.referencePath));
    expect(result.videoPath).toBe(out);
    expect(result.sizeBytes).toBe((await stat(out)).size);
    expect(result.task).toMatchObject({
      status: "succeeded",
      params: { sound: "true", aspect_ratio: "16:9" },
      references: [{ kind: "image", width: 1024, height: 576 }],
    });
    expect(await probeMp4(out)).toMatchObject({ width: 256, height: 144, hasAudio: true });
    expect(lines.join("\n")).toContain(`saved ${out} (${result.sizeBytes} bytes`);
    expect(lines.at(-1)).toMatch(/server stopped$/);
  });
});
