import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ffmpegInstaller from "@ffmpeg-installer/ffmpeg";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jpegSize, PosterMaker, posterTimeSeconds } from "./poster.js";

const FFMPEG = ffmpegInstaller.path;
let dir: string;
let video: string;
/** An ffmpeg that counts its runs in `runs` before running the real one. */
let countingFfmpeg: string;
const runs = () => readFileSync(join(dir, "runs"), "utf8").length;
let caches = 0;
/** A fresh cache directory per maker. */
const cacheDir = () => join(dir, `cache-${caches++}`);

/** A logger whose lines are kept, to check what a failure says. */
function recordingLogger() {
  const lines: { msg: string; reason?: string }[] = [];
  const log = pino({ level: "warn" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { log, lines };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "framegate-poster-test-"));
  video = join(dir, "clip.mp4");
  execFileSync(FFMPEG, [
    "-hide_banner",
    "-loglevel",
    "error",
    "-f",
    "lavfi",
    "-i",
    "testsrc=size=320x176:rate=10",
    "-t",
    "2",
    "-pix_fmt",
    "yuv420p",
    "-y",
    video,
  ]);
  writeFileSync(join(dir, "runs"), "");
  countingFfmpeg = join(dir, "ffmpeg-counting.sh");
  writeFileSync(countingFfmpeg, `#!/bin/sh\nprintf x >> '${join(dir, "runs")}'\nexec '${FFMPEG}' "$@"\n`);
  chmodSync(countingFfmpeg, 0o755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("PosterMaker", () => {
  it("takes a JPEG frame of the video's size", async () => {
    const { log } = recordingLogger();
    const poster = await new PosterMaker(FFMPEG, cacheDir(), log).make({
      path: video,
      width: 320,
      height: 176,
      durationSeconds: 2,
      sha256: "0".repeat(64),
    });
    if (!poster) throw new Error("no poster");
    const jpeg = readFileSync(poster.path);
    expect(jpegSize(jpeg)).toEqual({ width: 320, height: 176 });
    expect(poster.size).toBe(jpeg.length);
    expect(poster.sha256).toBe(createHash("sha256").update(jpeg).digest("hex"));
  });

  it("makes the poster of one video once: later tasks with the same digest reuse it", async () => {
    const { log } = recordingLogger();
    const maker = new PosterMaker(countingFfmpeg, cacheDir(), log);
    const input = { path: video, width: 320, height: 176, durationSeconds: 2, sha256: "a".repeat(64) };
    const before = runs();
    // Two at once (one run), then one more later (from the cache).
    const [a, b] = await Promise.all([maker.make(input), maker.make(input)]);
    const c = await maker.make(input);
    expect(runs() - before).toBe(1);
    expect(a).toBeDefined();
    expect(b).toEqual(a);
    expect(c).toEqual(a);
    // Another digest is another video.
    await maker.make({ ...input, sha256: "b".repeat(64) });
    expect(runs() - before).toBe(2);
  });

  it("gives no poster, without throwing, for a file ffmpeg cannot read or a size that does not match", async () => {
    const { log, lines } = recordingLogger();
    const maker = new PosterMaker(FFMPEG, cacheDir(), log);
    const garbage = join(dir, "garbage.mp4");
    writeFileSync(garbage, Buffer.alloc(4096, 7));
    expect(
      await maker.make({ path: garbage, width: 320, height: 176, durationSeconds: 2, sha256: "1".repeat(64) }),
    ).toBeUndefined();
    expect(lines.at(-1)?.msg).toMatch(/no poster frame/);
    // A probe that said another size: the frame is not kept.
    expect(
      await maker.make({ path: video, width: 640, height: 360, durationSeconds: 2, sha256: "2".repeat(64) }),
    ).toBeUndefined();
    expect(lines.at(-1)?.msg).toMatch(/unexpected output/);
  });

  it("keeps its posters as files in its cache directory, emptied when it starts", async () => {
    const cache = cacheDir();
    mkdirSync(cache, { recursive: true });
    writeFileSync(join(cache, "left-by-an-earlier-process.jpg"), "stale");
    const { log } = recordingLogger();
    const maker = new PosterMaker(FFMPEG, cache, log);
    expect(readdirSync(cache)).toEqual([]);
    const sha256 = "c".repeat(64);
    const poster = await maker.make({ path: video, width: 320, height: 176, durationSeconds: 2, sha256 });
    expect(poster?.path).toBe(join(cache, `${sha256}.jpg`));
    expect(readdirSync(cache)).toEqual([`${sha256}.jpg`]);
  });

  it("gives up on an ffmpeg that does not finish by its deadline", async () => {
    const hanging = join(dir, "ffmpeg-hangs.sh");
    writeFileSync(hanging, "#!/bin/sh\nexec sleep 30\n");
    chmodSync(hanging, 0o755);
    const { log, lines } = recordingLogger();
    const jpeg = await new PosterMaker(hanging, cacheDir(), log, 200).make({
      path: video,
      width: 320,
      height: 176,
      durationSeconds: 2,
      sha256: "3".repeat(64),
    });
    expect(jpeg).toBeUndefined();
    expect(lines.at(-1)?.reason).toMatch(/timed out after 200 ms/);
  });
});

describe("posterTimeSeconds and jpegSize", () => {
  it("takes the frame a tenth in, at most 1 s", () => {
    expect(posterTimeSeconds(5)).toBe(0.5);
    expect(posterTimeSeconds(10)).toBe(1);
    expect(posterTimeSeconds(60)).toBe(1);
    expect(posterTimeSeconds(0)).toBe(0);
  });

  it("reads no size from what is not a JPEG", () => {
    expect(jpegSize(Buffer.from("not a jpeg at all"))).toBeUndefined();
    expect(jpegSize(Buffer.from([0xff, 0xd8]))).toBeUndefined();
    expect(jpegSize(Buffer.from([0xff, 0xd8, 0x00, 0x00, 0x00]))).toBeUndefined();
  });
});
