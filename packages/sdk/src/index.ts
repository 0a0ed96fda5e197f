export {
  DEFAULT_BASE_URL,
  DEFAULT_MAX_RETRIES,
  DEFAULT_TIMEOUT_MS,
  Framegate,
  Framegate as default,
  type FramegateOptions,
} from "./client.js";
export type { CredentialsMode, RequestOptions } from "./core.js";
export type {
  DownloadDestination,
  DownloadOptions,
  DownloadProgress,
  DownloadResult,
  NodeWritableLike,
} from "./download.js";
export {
  APIConnectionError,
  APIError,
  APITimeoutError,
  type ApiErrorCode,
  AuthenticationError,
  ConflictError,
  type ErrorBody,
  type ErrorDetail,
  FileTooLargeError,
  FramegateError,
  InsufficientCreditsError,
  InternalServerError,
  NotCancelableError,
  NotFoundError,
  PayloadTooLargeError,
  PermissionDeniedError,
  QuotaExceededError,
  RateLimitedError,
  ServiceUnavailableError,
  UnsupportedMediaTypeError,
  ValidationError,
  WaitTimeoutError,
  WebhookUrlRejectedError,
  WebhookVerificationError,
  type WebhookVerificationReason,
} from "./errors.js";
export * from "./generated/models.js";
export { Page, PagePromise } from "./pagination.js";
export type { Credits as CreditsResource, Instant, LedgerListParams, UsageParams } from "./resources/credits.js";
export type { FileDeletion, FileListParams, Files, FileUploadParams } from "./resources/files.js";
export type { StreamOptions } from "./resources/generation-stream.js";
export {
  type CreateAndWaitOptions,
  type CreateOptions,
  DEFAULT_POLL_INTERVAL,
  type GenerationCreateParams,
  type GenerationListParams,
  type Generations,
  type LooseGenerationRequest,
  type PollInterval,
  type WaitOptions,
} from "./resources/generations.js";
export type { Keys } from "./resources/keys.js";
export type { Models } from "./resources/models.js";
export type {
  DeliveryListParams,
  EventListParams,
  PageParams,
  WebhookEndpointWithSecret,
  Webhooks,
} from "./resources/webhooks.js";
export type * from "./types.js";
export type { Uploadable } from "./uploads.js";
export { VERSION } from "./version.js";
export { type VerifyOptions, verifyWebhook, type WebhookHeaders } from "./webhook-verify.js";
