/**
 * The errors of the service, below every domain: the ledger, the store and the services throw
 * them, and http/ renders them (http/error-handler.ts, the envelope of api-contract §2), so no
 * lower layer depends on the HTTP layer. Each code's status comes from the contract's table.
 */
import { ERROR_STATUS, type ErrorCode, type ErrorDetail } from "@framegate/contract";

/**
 * An error answer must stay small whatever the request was: a 64 KB body can hold thousands of
 * unknown keys (or one key thousands of characters long), and echoing each back would turn a
 * cheap request into a large response. The first issues are the useful ones; the rest are counted.
 */
export const MAX_ERROR_DETAILS = 20;
const MAX_DETAIL_TEXT = 200;
const MAX_MESSAGE_TEXT = 1000;

/** `text` cut to at most `max` UTF-16 units (never splitting a surrogate pair), marked with "…". */
function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…`;
}

/** The first MAX_ERROR_DETAILS details, each clipped, plus one entry counting those left out. */
export function boundDetails(details: readonly ErrorDetail[]): ErrorDetail[] {
  const shown = details
    .slice(0, MAX_ERROR_DETAILS)
    .map((d) => ({ path: clip(d.path, MAX_DETAIL_TEXT), issue: clip(d.issue, MAX_DETAIL_TEXT) }));
  const hidden = details.length - shown.length;
  if (hidden > 0) shown.push({ path: "", issue: `${hidden} more issue${hidden === 1 ? "" : "s"} not shown` });
  return shown;
}

/** The one error type the service throws; mapped to the envelope in http/error-handler.ts only. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: ErrorDetail[] | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { details?: ErrorDetail[]; headers?: Record<string, string> } = {},
  ) {
    super(clip(message, MAX_MESSAGE_TEXT));
    this.name = "ApiError";
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.details = opts.details && boundDetails(opts.details);
    this.headers = opts.headers;
  }
}
