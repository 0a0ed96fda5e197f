/**
 * Resolves params.referenceMediaItems to files this server stores. Until the Files API exists,
 * no URL can have been issued by this server, so every reference is refused before any credit
 * is reserved.
 */
import type { ReferenceMediaItem } from "@framegate/contract";
import { ApiError } from "../http/errors.js";
import type { ProviderReference } from "../providers/provider.js";

export interface ReferenceResolver {
  resolve(accountId: string, items: ReferenceMediaItem[]): Promise<ProviderReference[]>;
}

export const noUploadsResolver: ReferenceResolver = {
  async resolve(_accountId, items) {
    if (items.length === 0) return [];
    throw new ApiError("validation_failed", "Reference media URLs must be issued by this server's Files API.", {
      details: items.map((_, i) => ({
        path: `params.referenceMediaItems[${i}].url`,
        issue: "was not issued by this server's Files API to this account; upload the file with POST /api/v1/files",
      })),
    });
  },
};
