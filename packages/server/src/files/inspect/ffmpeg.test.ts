import { describe, expect, it } from "vitest";
import { parseFfmpegReport } from "./ffmpeg.js";

describe("parseFfmpegReport", () => {
  it("parses ffmpeg 4 reports", () => {
    const report = parseFfmpegReport(
      [
        "[mp3 @ 0x1234] Estimating duration from bitrate, this may be inaccurate",
        "Input #0, mp3, from 'file:/srv/x.mp3':",
        "  Duration: N/A, start: 0.025057, bitrate: N/A",
        "    Stream #0:0: Audio: mp3, 44100 Hz, stereo, fltp, 128 kb/s",
        "    Stream #0:1: Video: mjpeg (Baseline), yuvj420p(pc), 500x500 [SAR 1:1 DAR 1:1], 90k tbr (attached pic)",
        "Output #0, null, to 'pipe:':",
        "    Stream #0:0: Video: h264 (avc1 / 0x31637661), yuv420p, 10x10",
        "size=N/A time=00:00:01.00 bitrate=N/A\rsize=N/A time=00:01:02.50 bitrate=N/A speed=1e+04x",
      ].join("\n"),
    );
    expect(report).toEqual({
      opened: true,
      headerSeconds: null,
      estimated: true,
      demuxedSeconds: 62.5,
      hasVideo: false,
      hasAudio: true,
      width: 0,
      height: 0,
      fatal: false,
    });
    const video = parseFfmpegReport(
      "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x':\n  Duration: 01:00:00.50, start: 0.000000, bitrate: 17 kb/s\n" +
        "    Stream #0:0(und): Video: h264 (High) (avc1 / 0x31637661), yuv420p, 1280x720 [SAR 1:1 DAR 16:9], 24 fps\n",
    );
    expect(video).toMatchObject({ headerSeconds: 3600.5, hasVideo: true, width: 1280, height: 720 });
    expect(parseFfmpegReport("x.webm: Invalid data found when processing input")).toMatchObject({
      opened: false,
      fatal: true,
    });
  });
});
