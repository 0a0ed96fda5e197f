import { Core, type CredentialsMode } from "./core.js";
import { readEnv } from "./internal.js";
import { Credits } from "./resources/credits.js";
import { Files } from "./resources/files.js";
import { Generations, type PollInterval } from "./resources/generations.js";
import { Keys } from "./resources/keys.js";
import { Models } from "./resources/models.js";
import { Webhooks } from "./resources/webhooks.js";

export const DEFAULT_BASE_URL = "http://127.0.0.1:8787";
export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_RETRIES = 2;

export interface FramegateOptions {
  /**
   * `rvya_sk_…`. Default: env FRAMEGATE_API_KEY, then RIVYA_API_KEY. Without one (in a browser on the
   * server's own origin, say) no Authorization header is sent and the server's console session
   * cookie authenticates instead: see `credentials`.
   */
  apiKey?: string;
  /**
   * fetch's `credentials` mode. Default: "same-origin" when there is no API key (cookie mode: the
   * browser sends the console's session cookie to its own origin, never elsewhere), otherwise
   * fetch's own default.
   */
  credentials?: CredentialsMode;
  /**
   * The server's origin (and path prefix, if any); `/api/v1/...` is appended, and a trailing
   * `/api/v1` is accepted too. Default: env FRAMEGATE_BASE_URL, then http://127.0.0.1:8787.
   */
  baseUrl?: string;
  /** Milliseconds per HTTP attempt (default 60 000). */
  timeout?: number;
  /** Retries after the first attempt (default 2); see the README for what is retried. */
  maxRetries?: number;
  /** A fetch implementation (default globalThis.fetch). */
  fetch?: typeof fetch;
  /** Headers sent with every request. */
  defaultHeaders?: Record<string, string>;
  /** Default polling cadence of generations.waitFor / createAndWait. */
  pollInterval?: PollInterval;
}

/** Client of the Rivya Public API v1 as Framegate implements it. */
export class Framegate {
  readonly baseUrl: string;
  readonly models: Models;
  readonly generations: Generations;
  readonly files: Files;
  readonly credits: Credits;
  readonly webhooks: Webhooks;
  /** The account's API keys (scope keys:manage). */
  readonly keys: Keys;
  readonly #core: Core;

  constructor(options: FramegateOptions = {}) {
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== "function") {
      throw new TypeError("No fetch implementation: pass `fetch` in the Framegate options.");
    }
    const rawBase = options.baseUrl ?? readEnv("FRAMEGATE_BASE_URL") ?? DEFAULT_BASE_URL;
    this.baseUrl = rawBase.replace(/\/+$/, "").replace(/\/api\/v1$/, "");
    const apiKey = options.apiKey ?? readEnv("FRAMEGATE_API_KEY") ?? readEnv("RIVYA_API_KEY");
    this.#core = new Core({
      apiKey,
      credentials: options.credentials ?? (apiKey ? undefined : "same-origin"),
      baseUrl: this.baseUrl,
      timeout: options.timeout ?? DEFAULT_TIMEOUT_MS,
      maxRetries: options.maxRetries ?? DEFAULT_MAX_RETRIES,
      fetch: fetchImpl,
      defaultHeaders: options.defaultHeaders ?? {},
    });
    this.models = new Models(this.#core);
    this.generations = new Generations(this.#core, options.pollInterval ?? {});
    this.files = new Files(this.#core);
    this.credits = new Credits(this.#core);
    this.webhooks = new Webhooks(this.#core);
    this.keys = new Keys(this.#core);
  }
}
