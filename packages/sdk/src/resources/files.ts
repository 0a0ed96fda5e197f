import type { Core, RequestOptions } from "../core.js";
import { PagePromise } from "../pagination.js";
import type { FileKind, FileObject, ListResponse } from "../types.js";
import { multipartBody, type Uploadable } from "../uploads.js";

export interface FileUploadParams {
  kind: FileKind;
  /** Apply this model's upload policy (e.g. "kling-2-6": images only, ≤ 10 MB, ≥ 300 px). */
  model?: string;
  /** File name sent with the part (default: the Blob/File name, the path's base name, or "upload"). */
  name?: string;
  client_request_id?: string;
}

export interface FileListParams {
  limit?: number;
  startingAfter?: string;
  kind?: FileKind;
}

/**
 * What DELETE /api/v1/files/{id} answers. The file is deleted for the API either way (not
 * listed, not usable by new tasks, not counted by the quotas); `storage` says whether its bytes
 * are gone already or wait for `pending_tasks` (queued or processing tasks using it) to end.
 */
export interface FileDeletion {
  id: string;
  object: "file";
  deleted: true;
  storage: "removed" | "pending_removal";
  pending_tasks: string[];
}

export class Files {
  constructor(private readonly core: Core) {}

  /**
   * POST /api/v1/files (multipart, streamed). `input`: a Blob/File, bytes (Uint8Array, Buffer,
   * ArrayBuffer), a ReadableStream, a Node Readable or any async iterable of chunks, or a file
   * path (Node only). Retried only on 429 and connection refusals, and never for streams.
   */
  async upload(input: Uploadable, params: FileUploadParams, options?: RequestOptions): Promise<FileObject> {
    const fields: [string, string][] = [["kind", params.kind]];
    if (params.model !== undefined) fields.push(["model", params.model]);
    if (params.client_request_id !== undefined) fields.push(["client_request_id", params.client_request_id]);
    const body = await multipartBody(input, fields, params.name);
    const { data } = await this.core.request<FileObject>({
      method: "POST",
      path: "/api/v1/files",
      body,
      retry: "unsafe",
      options,
    });
    return data;
  }

  /** GET /api/v1/files (newest first, optionally one kind); `for await` walks every page. */
  list(params: FileListParams = {}, options?: RequestOptions): PagePromise<FileObject> {
    return new PagePromise<FileObject>(async (startingAfter) => {
      const { data } = await this.core.request<ListResponse<FileObject>>({
        method: "GET",
        path: "/api/v1/files",
        query: { limit: params.limit, starting_after: startingAfter, kind: params.kind },
        retry: "idempotent",
        options,
      });
      return data;
    }, params.startingAfter);
  }

  /**
   * DELETE /api/v1/files/{id}. Retried like any idempotent request: a retry of a delete that
   * went through is a NotFoundError (the file is gone), which the caller may treat as done.
   */
  async delete(id: string, options?: RequestOptions): Promise<FileDeletion> {
    const { data } = await this.core.request<FileDeletion>({
      method: "DELETE",
      path: `/api/v1/files/${encodeURIComponent(id)}`,
      retry: "idempotent",
      options,
    });
    return data;
  }

  /** GET /api/v1/files/{id}. */
  async retrieve(id: string, options?: RequestOptions): Promise<FileObject> {
    const { data } = await this.core.request<FileObject>({
      method: "GET",
      path: `/api/v1/files/${encodeURIComponent(id)}`,
      retry: "idempotent",
      options,
    });
    return data;
  }
}
