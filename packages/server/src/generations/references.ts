/** What a task records about each reference file it uses (tasks.references_json). */
import type { ModelEntry, ReferenceMediaItem } from "@framegate/contract";

export interface StoredReference {
  fileId: string;
  kind: "image" | "video" | "audio";
  mimeType: string;
  storageKey: string;
  name: string | null;
  width: number | null;
  height: number | null;
  durationSeconds: number | null;
  /** The file's own expiry: its URL is signed until then. */
  expiresAt: string;
}

/** Turns params.referenceMediaItems into files of the account, or throws validation_failed. */
export interface ReferenceResolver {
  resolve(accountId: string, model: ModelEntry, items: ReferenceMediaItem[]): Promise<StoredReference[]>;
}
