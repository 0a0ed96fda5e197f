export { KLING_CODE_RULES, KlingApiError } from "./errors.js";
export type { SendImagesAs } from "./image.js";
export {
  KLING_DEFAULT_BASE_URL,
  KLING_DEFAULT_REQUEST_TIMEOUT_MS,
  KlingProvider,
  type KlingProviderOptions,
} from "./kling-provider.js";
export type { KlingMode, KlingSubpath } from "./mapping.js";
export { type KlingCallbackHint, parseCallbackBody } from "./response.js";
