/**
 * `npm run demo [-- --out video.mp4]`: the whole flow, offline, in one process.
 *
 *   1. starts the embedded server (simulated provider) on a free port, with its data in a temp dir;
 *   2. renders a 1024x576 reference image with the bundled ffmpeg (testsrc);
 *   3. through the SDK: uploads it (kind image, model kling-2-6) and runs an image-to-video
 *      generation WITH SOUND (createAndWait);
 *   4. downloads the MP4, prints its path and size, and stops the server.
 *
 * The server's data directory is deleted at the end; the MP4 (and the reference image) stay.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { pathToFileURL } from "node:url";
import ffmpegInstaller from "@ffmpeg-installer/ffmpeg";
import { Framegate, type Task } from "@framegate/sdk";
import { createLogger, loadConfig, startServer } from "@framegate/server";

export interface DemoOptions {
  /** Where to save the MP4 (default: demo.mp4 in a new temp directory). */
  out?: string;
  /** Progress lines (default console.log). */
  log?: (line: string) => void;
  /** Extra server settings (e.g. smaller SIM_SIZE_16_9 in tests). */
  serverEnv?: Record<string, string>;
}

export interface DemoResult {
  taskId: string;
  videoPath: string;
  sizeBytes: number;
  referencePath: string;
  task: Task;
}

function ffmpeg(args: string[]): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(ffmpegInstaller.path, ["-hide_banner", "-nostdin", "-v", "error", "-y", ...args], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr = (stderr + d).slice(-2000);
    });
    child.once("error", reject);
    child.once("close", (code) =>
      code === 0 ? resolvePromise() : reject(new Error(`ffmpeg exited with ${code}: ${stderr.trim()}`)),
    );
  });
}

async function download(url: string, dest: string): Promise<number> {
  const response = await fetch(url);
  if (!response.ok || !response.body) throw new Error(`download failed: HTTP ${response.status}`);
  await mkdir(dirname(dest), { recursive: true });
  const tmp = `${dest}.${randomBytes(4).toString("hex")}.part`;
  try {
    await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), createWriteStream(tmp));
    await rename(tmp, dest);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  return (await stat(dest)).size;
}

export async function runDemo(opts: DemoOptions = {}): Promise<DemoResult> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const started = Date.now();
  const since = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
  const workDir = await mkdtemp(join(tmpdir(), "framegate-demo-"));
  const dataDir = join(workDir, "data");
  const videoPath = resolve(opts.out ?? join(workDir, "demo.mp4"));

  const config = loadConfig({
    DATA_DIR: dataDir,
    HOST: "127.0.0.1",
    PORT: "0",
    LOG_LEVEL: "warn",
    PROVIDERS: "simulated",
    BOOTSTRAP_DEV_ACCOUNT: "false",
    WORKER_POLL_INTERVAL_MS: "50",
    ...opts.serverEnv,
  });
  log(`[${since()}] starting the embedded server (data in ${dataDir})`);
  const server = await startServer(config, { log: createLogger("warn") });
  try {
    const account = await server.accounts.createAccount({ name: "demo", credits: 1000 });
    const key = await server.accounts.createKey(account.id, { name: "demo" });
    log(`[${since()}] server on ${server.url}; account ${account.id} with 1000 credits, key ${key.key.slice(0, 12)}…`);

    const referencePath = join(workDir, "reference.png");
    await ffmpeg(["-f", "lavfi", "-i", "testsrc=size=1024x576:rate=1", "-frames:v", "1", referencePath]);
    log(`[${since()}] rendered a 1024x576 reference image: ${referencePath}`);

    const client = new Framegate({
      baseUrl: server.url,
      apiKey: key.key,
      pollInterval: { first: 250, min: 250, max: 1000 },
    });
    const file = await client.files.upload(referencePath, { kind: "image", model: "kling-2-6" });
    log(`[${since()}] uploaded it as ${file.id} (${file.width}x${file.height}, ${file.size_bytes} bytes)`);

    let lastStatus = "";
    const task = await client.generations.createAndWait(
      {
        model: "kling-2-6",
        prompt: "The test pattern slowly zooms in while a soft tone plays",
        params: {
          duration: "5",
          sound: "true",
          aspect_ratio: "16:9",
          referenceMediaItems: [{ url: file.url, kind: "image", mimeType: file.mime_type }],
        },
      },
      {
        timeout: 60_000,
        onUpdate: (t) => {
          if (t.status === lastStatus) return;
          lastStatus = t.status;
          log(`[${since()}] ${t.id} ${t.status}`);
        },
      },
    );
    if (task.status !== "succeeded" || !task.result) {
      throw new Error(`generation ${task.id} ${task.status}: ${task.error?.reason} ${task.error?.message}`);
    }
    const sizeBytes = await download(task.result.primary_url, videoPath);
    const media = task.result.media[0];
    log(
      `[${since()}] saved ${videoPath} (${sizeBytes} bytes${
        media ? `, ${media.width}x${media.height}, ${media.duration_seconds} s, audio: ${media.has_audio}` : ""
      })`,
    );
    return { taskId: task.id, videoPath, sizeBytes, referencePath, task };
  } finally {
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
    log(`[${since()}] server stopped`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const outFlag = process.argv.indexOf("--out");
  const out = outFlag > 0 ? process.argv[outFlag + 1] : undefined;
  runDemo(out ? { out } : {}).then(
    (result) => {
      console.log(`\n${result.videoPath}  ${(result.sizeBytes / 1024).toFixed(1)} KB`);
    },
    (error) => {
      console.error(`demo failed: ${error instanceof Error ? error.message : error}`);
      process.exitCode = 1;
    },
  );
}
