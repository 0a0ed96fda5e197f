import { describe, expect, it } from "vitest";
import { ProviderError, type ProviderReference, type ProviderTask } from "../provider.js";
import {
  buildFalRequest,
  FAL_APP_ID,
  FAL_ASPECT_RATIOS,
  FAL_DURATIONS,
  FAL_MODEL_IDS,
  FAL_SOUND,
  falCancelUrl,
  falResultUrl,
  falStatusUrl,
  falSubmitUrl,
  isFalRequestId,
  mapFalOutput,
  normalizeQueueUrl,
} from "./mapping.js";

const IMAGE: ProviderReference = {
  kind: "image",
  mimeType: "image/png",
  url: "https://gw.example/media/ref.png?sig=abc",
  localPath: "/data/ref.png",
};

function task(
  params: Record<string, string>,
  references: ProviderReference[] = [],
  prompt = "a red fox",
): ProviderTask {
  return { taskId: "task_1", model: "kling-2-6", prompt, params, references };
}

function expectFinal(fn: () => unknown, reason: string): ProviderError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderError);
    const e = err as ProviderError;
    expect(e.retryable).toBe(false);
    expect(e.reason).toBe(reason);
    return e;
  }
  throw new Error("expected a ProviderError");
}

describe("fal mapping table", () => {
  it("covers exactly the catalog's values", () => {
    expect(Object.keys(FAL_DURATIONS).sort()).toEqual(["10", "5"]);
    expect(FAL_DURATIONS).toEqual({ "5": "5", "10": "10" });
    expect(FAL_SOUND).toEqual({ false: false, true: true });
    expect(FAL_ASPECT_RATIOS).toEqual({ "1:1": "1:1", "16:9": "16:9", "9:16": "9:16" });
    expect(FAL_MODEL_IDS).toEqual({
      "text-to-video": "fal-ai/kling-video/v2.6/pro/text-to-video",
      "image-to-video": "fal-ai/kling-video/v2.6/pro/image-to-video",
    });
    expect(FAL_APP_ID).toBe("fal-ai/kling-video");
  });

  describe("text-to-video", () => {
    for (const duration of ["5", "10"] as const) {
      for (const sound of ["false", "true"] as const) {
        for (const aspect of ["1:1", "16:9", "9:16"] as const) {
          it(`duration ${duration}, sound ${sound}, ${aspect}`, () => {
            const req = buildFalRequest(task({ duration, sound, aspect_ratio: aspect }));
            expect(req.mode).toBe("text-to-video");
            expect(req.modelId).toBe("fal-ai/kling-video/v2.6/pro/text-to-video");
            // Exact object: no extra fields (no negative_prompt, cfg_scale, image fields).
            expect(req.input).toStrictEqual({
              prompt: "a red fox",
              duration,
              aspect_ratio: aspect,
              generate_audio: sound === "true",
            });
            expect(typeof req.input.duration).toBe("string");
            expect(typeof req.input.generate_audio).toBe("boolean");
          });
        }
      }
    }

    it("fills missing params with the catalog defaults, never fal's (audio off, 1:1)", () => {
      const req = buildFalRequest(task({}));
      expect(req.input).toStrictEqual({
        prompt: "a red fox",
        duration: "5",
        aspect_ratio: "1:1",
        generate_audio: false,
      });
    });

    it("ignores params it does not map", () => {
      const req = buildFalRequest(task({ duration: "10", sound: "true", aspect_ratio: "9:16", seed: "42" }));
      expect(Object.keys(req.input).sort()).toEqual(["aspect_ratio", "duration", "generate_audio", "prompt"]);
    });

    it("keeps the prompt byte for byte", () => {
      const prompt = '  quotes " and \\ newlines\nand emoji 🦊 ';
      expect(buildFalRequest(task({}, [], prompt)).input.prompt).toBe(prompt);
    });
  });

  describe("image-to-video", () => {
    for (const duration of ["5", "10"] as const) {
      for (const sound of ["false", "true"] as const) {
        it(`duration ${duration}, sound ${sound}`, () => {
          const req = buildFalRequest(task({ duration, sound, aspect_ratio: "16:9" }, [IMAGE]));
          expect(req.mode).toBe("image-to-video");
          expect(req.modelId).toBe("fal-ai/kling-video/v2.6/pro/image-to-video");
          // start_image_url (not image_url), no aspect_ratio.
          expect(req.input).toStrictEqual({
            prompt: "a red fox",
            duration,
            generate_audio: sound === "true",
            start_image_url: IMAGE.url,
          });
        });
      }
    }

    it("refuses a reference without an http(s) URL (provider_error, not the caller's fault)", () => {
      expectFinal(
        () => buildFalRequest(task({}, [{ kind: "image", mimeType: "image/png", localPath: "/x.png" }])),
        "provider_error",
      );
      expectFinal(() => buildFalRequest(task({}, [{ ...IMAGE, url: "file:///etc/passwd" }])), "provider_error");
      expectFinal(() => buildFalRequest(task({}, [{ ...IMAGE, url: "https://u:p@host/x.png" }])), "provider_error");
    });

    it("refuses non-image references and more than one image", () => {
      expectFinal(
        () => buildFalRequest(task({}, [{ kind: "video", mimeType: "video/mp4", url: "https://x/v.mp4" }])),
        "invalid_input",
      );
      expectFinal(() => buildFalRequest(task({}, [IMAGE, IMAGE])), "invalid_input");
    });
  });

  it("refuses values outside the table", () => {
    expectFinal(() => buildFalRequest(task({ duration: "7" })), "invalid_input");
    expectFinal(() => buildFalRequest(task({ duration: "5s" })), "invalid_input");
    expectFinal(() => buildFalRequest(task({ sound: "yes" })), "invalid_input");
    expectFinal(() => buildFalRequest(task({ aspect_ratio: "4:3" })), "invalid_input");
    expectFinal(() => buildFalRequest(task({ duration: "constructor" })), "invalid_input");
    expectFinal(() => buildFalRequest(task({ sound: "toString" })), "invalid_input");
    expectFinal(() => buildFalRequest({ ...task({}), model: "kling-3" }), "invalid_input");
  });
});

describe("fal queue URLs", () => {
  const base = "https://queue.fal.run";
  const id = "764cabcf-b745-4b3e-ae38-1200304cf45b";

  it("submit uses the full model id, everything else owner/app only", () => {
    expect(falSubmitUrl(base, FAL_MODEL_IDS["text-to-video"])).toBe(
      "https://queue.fal.run/fal-ai/kling-video/v2.6/pro/text-to-video",
    );
    expect(falStatusUrl(base, id)).toBe(`https://queue.fal.run/fal-ai/kling-video/requests/${id}/status`);
    expect(falResultUrl(base, id)).toBe(`https://queue.fal.run/fal-ai/kling-video/requests/${id}`);
    expect(falCancelUrl(base, id)).toBe(`https://queue.fal.run/fal-ai/kling-video/requests/${id}/cancel`);
  });

  it("never puts a malformed id into a path", () => {
    for (const bad of ["", "../x", "a/b", "a?b", "a#b", "%2e%2e", "x".repeat(129), "id with space"]) {
      expect(isFalRequestId(bad)).toBe(false);
      expect(() => falStatusUrl(base, bad)).toThrow(ProviderError);
      expect(() => falResultUrl(base, bad)).toThrow(ProviderError);
    }
    expect(isFalRequestId(id)).toBe(true);
    expect(isFalRequestId(42)).toBe(false);
  });

  it("normalizes the configured base", () => {
    expect(normalizeQueueUrl("https://queue.fal.run/")).toBe("https://queue.fal.run");
    expect(normalizeQueueUrl("https://queue.fal.run")).toBe("https://queue.fal.run");
    expect(normalizeQueueUrl("http://127.0.0.1:8080/prefix//")).toBe("http://127.0.0.1:8080/prefix");
    expect(() => normalizeQueueUrl("queue.fal.run")).toThrow();
    expect(() => normalizeQueueUrl("ftp://queue.fal.run")).toThrow();
    expect(() => normalizeQueueUrl("https://user:pw@queue.fal.run")).toThrow();
    expect(() => normalizeQueueUrl("https://queue.fal.run/?x=1")).toThrow();
  });
});

describe("fal output mapping", () => {
  it("reads the raw model output's `video` key", () => {
    const result = mapFalOutput({
      video: {
        url: "https://v3b.fal.media/files/x/out.mp4",
        content_type: "video/mp4",
        file_name: "out.mp4",
        file_size: 1234,
      },
    });
    expect(result).toEqual({
      state: "succeeded",
      media: [{ kind: "url", url: "https://v3b.fal.media/files/x/out.mp4", mimeType: "video/mp4" }],
      details: { file_size: "1234", file_name: "out.mp4" },
    });
  });

  it("defaults the MIME type to video/mp4 when missing or not a video type", () => {
    for (const content_type of [undefined, null, "", "text/html", "application/octet-stream", 5]) {
      const result = mapFalOutput({ video: { url: "https://v3b.fal.media/a.mp4", content_type } });
      expect(result.state === "succeeded" && result.media[0]?.mimeType).toBe("video/mp4");
    }
    const webm = mapFalOutput({ video: { url: "https://v3b.fal.media/a.webm", content_type: "video/webm" } });
    expect(webm.state === "succeeded" && webm.media[0]?.mimeType).toBe("video/webm");
  });

  it("fails (final) on an envelope or a result without a usable URL", () => {
    for (const output of [
      { response: { video: { url: "https://v3b.fal.media/a.mp4" } } },
      { status: "COMPLETED", data: {} },
      { video: {} },
      { video: { url: 42 } },
      { video: { url: "javascript:alert(1)" } },
      { video: { url: "file:///etc/passwd" } },
      { video: { url: "not a url" } },
      [],
      null,
      "x",
    ]) {
      const result = mapFalOutput(output);
      expect(result.state).toBe("failed");
      expect(result.state === "failed" && result.reason).toBe("provider_error");
    }
  });
});
