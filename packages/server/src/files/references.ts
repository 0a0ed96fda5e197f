/**
 * Resolves params.referenceMediaItems before any credit is reserved. A reference must be a file
 * URL this server issued to the same account (signature checked), whose stored kind, type, size,
 * dimensions and duration satisfy the model's policy. With REFERENCE_URL_FETCH on, other URLs are
 * fetched once through the SSRF guard and stored as files of the account first.
 */
import { basename } from "node:path";
import {
  checkImageConstraints,
  type ErrorDetail,
  type ModelEntry,
  type ReferenceMediaItem,
  uploadLimit,
} from "@framegate/contract";
import { ApiError } from "../errors.js";
import type { ReferenceResolver, StoredReference } from "../generations/references.js";
import { OutboundError, safeFetch } from "../net/safe-fetch.js";
import { type GuardOptions, INSECURE, STRICT } from "../net/url-guard.js";
import type { UrlSigner } from "../storage/signed-urls.js";
import type { FilesTable } from "../store/schema.js";
import type { Clock } from "../util/clock.js";
import { UNKNOWN_FILE_ISSUE } from "./live-references.js";
import type { FileService } from "./service.js";
import type { DurationTokens } from "./tokens.js";

const FILE_PATH = /^\/media\/files\/(file_[A-Za-z0-9]{1,64})\.[a-z0-9]{1,8}$/;

export interface UrlFetchOptions {
  enabled: boolean;
  allowInsecure: boolean;
  timeoutMs: number;
}

class Problem extends Error {
  constructor(
    readonly path: string,
    readonly issue: string,
  ) {
    super(issue);
  }
}

export class FileReferenceResolver implements ReferenceResolver {
  constructor(
    private readonly deps: {
      files: FileService;
      signer: UrlSigner;
      tokens: DurationTokens;
      clock: Clock;
      fetch: UrlFetchOptions;
    },
  ) {}

  async resolve(accountId: string, model: ModelEntry, items: ReferenceMediaItem[]): Promise<StoredReference[]> {
    const resolved: StoredReference[] = [];
    const issues: ErrorDetail[] = [];
    for (const [index, item] of items.entries()) {
      const base = `params.referenceMediaItems[${index}]`;
      try {
        const file = await this.fileFor(accountId, model, item, base);
        this.checkFile(model, item, file, base);
        resolved.push({
          fileId: file.id,
          kind: file.kind,
          mimeType: file.mime_type,
          storageKey: file.storage_key,
          name: item.name ?? file.name,
          width: file.width,
          height: file.height,
          durationSeconds: file.duration_seconds,
          expiresAt: file.expires_at,
        });
      } catch (error) {
        if (!(error instanceof Problem)) throw error;
        issues.push({ path: error.path, issue: error.issue });
      }
    }
    if (issues.length > 0) {
      const first = issues[0] as ErrorDetail;
      throw new ApiError("validation_failed", `Invalid reference media: ${first.path} ${first.issue}.`, {
        details: issues,
      });
    }
    return resolved;
  }

  /** The stored file an item points at: one of ours by signed URL, or fetched (when enabled). */
  private async fileFor(accountId: string, model: ModelEntry, item: ReferenceMediaItem, base: string) {
    const url = new URL(item.url);
    const match = FILE_PATH.exec(url.pathname);
    if (match && url.searchParams.has("signature")) {
      const problem = this.deps.signer.verify(
        url.pathname,
        url.searchParams.get("expires") ?? undefined,
        url.searchParams.get("signature") ?? undefined,
        this.deps.clock.now(),
      );
      if (problem) throw new Problem(`${base}.url`, `is not a valid file URL of this server (${problem})`);
      const file = await this.deps.files.findOwned(accountId, match[1] as string);
      // Someone else's file and a deleted one look the same: never reveal which.
      if (!file) throw new Problem(`${base}.url`, UNKNOWN_FILE_ISSUE);
      return file;
    }
    if (!this.deps.fetch.enabled) {
      throw new Problem(
        `${base}.url`,
        "was not issued by this server's Files API; upload the file with POST /api/v1/files first and use the url it returns",
      );
    }
    return this.fetchExternal(accountId, model, item, base);
  }

  private async fetchExternal(accountId: string, model: ModelEntry, item: ReferenceMediaItem, base: string) {
    const { files } = this.deps;
    const previous = await files.findFetched(accountId, item.url);
    if (previous && previous.kind === item.kind) return previous;
    const limit = uploadLimit(item.kind, model);
    if (!limit) throw new Problem(`${base}.kind`, `${model.id} does not accept ${item.kind} references`);
    // A fetched file is stored like an upload and counts against the same quotas.
    await files.assertRoomForAnotherFile(accountId);
    const guard: GuardOptions = this.deps.fetch.allowInsecure ? INSECURE : STRICT;
    let response: Awaited<ReturnType<typeof safeFetch>>;
    try {
      response = await safeFetch(item.url, {
        ...guard,
        maxBytes: limit.max_bytes,
        timeoutMs: this.deps.fetch.timeoutMs,
        maxRedirects: 3,
      });
    } catch (error) {
      throw new Problem(`${base}.url`, `could not be fetched: ${describeFetchError(error)}`);
    }
    if (response.status !== 200) {
      response.body.resume();
      throw new Problem(`${base}.url`, `could not be fetched: the server answered HTTP ${response.status}`);
    }
    let received: Awaited<ReturnType<FileService["receive"]>>;
    try {
      received = await files.receive(response.body, limit.max_bytes);
    } catch (error) {
      throw new Problem(`${base}.url`, `could not be fetched: ${describeFetchError(error)}`);
    }
    const name = item.name ?? (basename(new URL(response.url).pathname).slice(0, 255) || null);
    try {
      return await files
        .accept(accountId, received, { kind: item.kind, model, name, clientRequestId: null, sourceUrl: item.url })
        .then((object) => files.findOwned(accountId, object.id) as Promise<FilesTable>);
    } catch (error) {
      if (error instanceof ApiError && error.code === "quota_exceeded") throw error;
      if (error instanceof ApiError)
        throw new Problem(`${base}.url`, `points at a file that ${lowerFirst(error.message)}`);
      throw error;
    }
  }

  private checkFile(model: ModelEntry, item: ReferenceMediaItem, file: FilesTable, base: string): void {
    if (item.kind !== file.kind) {
      throw new Problem(`${base}.kind`, `is "${item.kind}" but the file is ${article(file.kind)} ${file.kind}`);
    }
    const limit = uploadLimit(file.kind, model);
    if (!limit) throw new Problem(`${base}.kind`, `${model.id} does not accept ${file.kind} references`);
    if (item.mimeType !== undefined && item.mimeType !== file.mime_type) {
      throw new Problem(`${base}.mimeType`, `is "${item.mimeType}" but the file is ${file.mime_type}`);
    }
    if (!limit.mime_types.includes(file.mime_type)) {
      throw new Problem(
        `${base}.url`,
        `is a ${file.mime_type} file; ${model.id} accepts ${limit.mime_types.join(", ")}`,
      );
    }
    if (file.size_bytes > limit.max_bytes) {
      throw new Problem(`${base}.url`, `is ${file.size_bytes} bytes; ${model.id} accepts at most ${limit.max_bytes}`);
    }
    if (file.kind === "image" && file.width && file.height) {
      const problem = checkImageConstraints(limit, file.width, file.height);
      if (problem) throw new Problem(`${base}.url`, `cannot be used by ${model.id}: ${problem}`);
    }
    if (item.durationToken !== undefined) {
      const verdict = this.deps.tokens.verify(item.durationToken, file.id, this.deps.clock.now());
      if (!verdict.ok) throw new Problem(`${base}.durationToken`, verdict.reason);
    }
    if (item.durationSeconds !== undefined) {
      if (file.duration_seconds === null) {
        throw new Problem(`${base}.durationSeconds`, `is set but the file has no duration`);
      }
      if (Math.abs(item.durationSeconds - file.duration_seconds) > 0.05) {
        throw new Problem(
          `${base}.durationSeconds`,
          `is ${item.durationSeconds} but the file lasts ${file.duration_seconds} s`,
        );
      }
    }
  }
}

function describeFetchError(error: unknown): string {
  if (error instanceof OutboundError) {
    switch (error.kind) {
      case "blocked":
        return "its address is not allowed (only public https URLs are fetched)";
      case "timeout":
        return "it took too long";
      case "too_large":
        return "the file is larger than allowed";
      case "redirects":
        return "too many redirects";
      default:
        return "the request failed";
    }
  }
  if (error instanceof ApiError) return lowerFirst(error.message);
  return "the request failed";
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? "an" : "a";
}
