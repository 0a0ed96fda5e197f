/**
 * The optional reference image: checked against the model's catalog rules in the browser (type by
 * its bytes, size, then the decoded image's sides and aspect ratio) so a bad image is refused
 * before any upload, shown as a preview, then uploaded through the SDK's files API with the
 * model's policy. The preview is drawn on a canvas from the decoded bitmap: the console's CSP
 * allows images from its own origin only, so a blob: URL in an <img> would be blocked.
 */
import type { FileObject, MediaLimit } from "@framegate/sdk";
import { useEffect, useRef, useState } from "preact/hooks";
import { client, errorMessage } from "../../api.js";
import {
  checkDimensions,
  checkFile,
  describeLimit,
  detectImageType,
  fitWithin,
  SNIFF_BYTES,
} from "../../playground.js";

/** Where the reference stands; the create is possible with none or a ready one. */
export type Reference =
  | { state: "none" }
  | { state: "checking"; name: string }
  | { state: "invalid"; name: string; problems: string[] }
  | { state: "uploading"; name: string }
  | { state: "failed"; name: string; error: string }
  | { state: "ready"; name: string; file: FileObject };

const PREVIEW_MAX_PX = 320;

interface Props {
  modelId: string;
  limit: MediaLimit;
  value: Reference;
  onChange: (reference: Reference) => void;
}

export function ReferenceImage({ modelId, limit, value, onChange }: Props) {
  const input = useRef<HTMLInputElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const [bitmap, setBitmap] = useState<ImageBitmap | null>(null);
  // The file being handled: a newer choice (or Remove) makes an older one's results stale.
  const current = useRef(0);
  const upload = useRef<AbortController | null>(null);

  useEffect(() => {
    const target = canvas.current;
    if (!bitmap || !target) return;
    const size = fitWithin(bitmap.width, bitmap.height, PREVIEW_MAX_PX);
    target.width = size.width;
    target.height = size.height;
    target.getContext("2d")?.drawImage(bitmap, 0, 0, size.width, size.height);
  }, [bitmap]);

  // Leaving the page stops an upload in flight and frees the decoded image.
  useEffect(
    () => () => {
      upload.current?.abort();
      current.current++;
    },
    [],
  );

  const reset = () => {
    current.current++;
    upload.current?.abort();
    upload.current = null;
    setBitmap((old) => {
      old?.close();
      return null;
    });
  };

  const choose = async (file: File) => {
    reset();
    const turn = current.current;
    const stale = () => turn !== current.current;
    onChange({ state: "checking", name: file.name });

    const head = new Uint8Array(await file.slice(0, SNIFF_BYTES).arrayBuffer());
    const mimeType = detectImageType(head, file.type);
    const fileProblems = checkFile(limit, { sizeBytes: file.size, mimeType });
    if (stale()) return;
    if (fileProblems.length) return onChange({ state: "invalid", name: file.name, problems: fileProblems });

    let decoded: ImageBitmap;
    try {
      decoded = await createImageBitmap(file);
    } catch {
      if (stale()) return;
      return onChange({
        state: "invalid",
        name: file.name,
        problems: ["The file could not be read as an image: it may be damaged or cut short."],
      });
    }
    if (stale()) return decoded.close();
    setBitmap(decoded);
    const problems = checkDimensions(limit, decoded.width, decoded.height);
    if (problems.length) return onChange({ state: "invalid", name: file.name, problems });

    // Valid by the catalog's rules: upload now, so the server's own checks (which see more, such
    // as a file hiding another inside it) answer before the create rather than at it.
    onChange({ state: "uploading", name: file.name });
    const abort = new AbortController();
    upload.current = abort;
    try {
      const uploaded = await client.files.upload(
        file,
        { kind: "image", model: modelId, name: file.name },
        { signal: abort.signal },
      );
      if (!stale()) onChange({ state: "ready", name: file.name, file: uploaded });
    } catch (error) {
      if (!stale()) onChange({ state: "failed", name: file.name, error: errorMessage(error) });
    }
  };

  const remove = () => {
    reset();
    if (input.current) input.current.value = "";
    onChange({ state: "none" });
    input.current?.focus();
  };

  const hintId = "reference-hint";
  const statusId = "reference-status";
  return (
    <div class="reference-field">
      <label for="reference-input">Reference image (optional)</label>
      <p id={hintId} class="muted small">
        Makes an image-to-video generation. {describeLimit(limit)}
      </p>
      <input
        ref={input}
        id="reference-input"
        type="file"
        accept={limit.mime_types.join(",")}
        aria-describedby={`${hintId} ${statusId}`}
        aria-invalid={value.state === "invalid" || value.state === "failed" ? "true" : undefined}
        onChange={(event) => {
          const file = event.currentTarget.files?.[0];
          if (file) void choose(file);
          else remove();
        }}
      />
      <div id={statusId} aria-live="polite">
        <ReferenceStatus value={value} />
      </div>
      {bitmap && value.state !== "none" ? (
        <figure class="reference-preview">
          <canvas
            ref={canvas}
            role="img"
            aria-label={`Preview of ${value.name}, ${bitmap.width}×${bitmap.height} px`}
          />
          <figcaption class="muted small">
            {value.name}, {bitmap.width}×{bitmap.height} px
          </figcaption>
        </figure>
      ) : null}
      {value.state !== "none" ? (
        <button type="button" onClick={remove}>
          Remove image
        </button>
      ) : null}
    </div>
  );
}

function ReferenceStatus({ value }: { value: Reference }) {
  switch (value.state) {
    case "none":
      return null;
    case "checking":
      return <p class="muted">Checking {value.name}…</p>;
    case "uploading":
      return <p class="muted">Uploading {value.name}…</p>;
    case "ready":
      return <p class="reference-ok">Uploaded {value.name}: the video will start from it.</p>;
    case "failed":
      return (
        <p class="notice error">
          The upload of {value.name} was refused: {value.error}
        </p>
      );
    case "invalid":
      return (
        <div class="notice error">
          <p>{value.name} cannot be used:</p>
          <ul>
            {value.problems.map((problem) => (
              <li key={problem}>{problem}</li>
            ))}
          </ul>
        </div>
      );
  }
}
