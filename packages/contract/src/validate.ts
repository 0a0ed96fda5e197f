/**
 * Catalog-driven validation of POST /api/v1/generations bodies. Pure: returns either the
 * normalized request (defaults applied, select values as strings) or every issue found,
 * each with the JSON path it concerns.
 */
import { CATALOG, findModel, type ModelEntry, type ParamDescriptor } from "./catalog.js";
import type { ErrorDetail } from "./errors.js";
import type { ReferenceMediaItem } from "./schemas.js";

export interface NormalizedGenerationRequest {
  model: ModelEntry;
  prompt: string;
  params: Record<string, string>;
  referenceMediaItems: ReferenceMediaItem[];
  clientRequestId: string | null;
}

export type ValidationResult = { ok: true; value: NormalizedGenerationRequest } | { ok: false; issues: ErrorDetail[] };

const TOP_LEVEL_KEYS = new Set(["model", "prompt", "params", "client_request_id"]);
const REFERENCE_ITEM_KEYS = new Set(["url", "kind", "name", "mimeType", "durationSeconds", "durationToken"]);
const REFERENCE_KEY = "referenceMediaItems";
export const MAX_CLIENT_REQUEST_ID_LENGTH = 128;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** False for strings with unpaired UTF-16 surrogates, which cannot be stored or sent as UTF-8. */
function isWellFormed(value: string): boolean {
  return !/\p{Surrogate}/u.test(value);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}

/** A select accepts its string options, and a number or boolean whose string form is one. */
function normalizeSelect(param: ParamDescriptor, value: unknown): string | undefined {
  if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") return undefined;
  const asString = String(value);
  return param.options?.includes(asString) ? asString : undefined;
}

function validateParam(param: ParamDescriptor, value: unknown): { value?: string; issue?: string } {
  if (param.type === "select") {
    const normalized = normalizeSelect(param, value);
    if (normalized === undefined) {
      return { issue: `must be one of ${(param.options ?? []).map((o) => `"${o}"`).join(", ")}` };
    }
    return { value: normalized };
  }
  if (param.type === "text") {
    return typeof value === "string" ? { value } : { issue: "must be a string" };
  }
  if (typeof value !== "number" || !Number.isFinite(value)) return { issue: "must be a number" };
  if (param.min !== null && value < param.min) return { issue: `must be at least ${param.min}` };
  if (param.max !== null && value > param.max) return { issue: `must be at most ${param.max}` };
  return { value: String(value) };
}

function validateReferenceItems(model: ModelEntry, raw: unknown, issues: ErrorDetail[]): ReferenceMediaItem[] {
  const base = `params.${REFERENCE_KEY}`;
  const policy = model.reference_media;
  if (!policy) {
    issues.push({ path: base, issue: `model ${model.id} does not accept reference media` });
    return [];
  }
  if (!Array.isArray(raw)) {
    issues.push({ path: base, issue: `must be an array, got ${describe(raw)}` });
    return [];
  }
  if (raw.length > policy.max_items) {
    issues.push({
      path: base,
      issue: `at most ${policy.max_items} item(s) allowed for ${model.id}, got ${raw.length}`,
    });
  }
  const items: ReferenceMediaItem[] = [];
  raw.forEach((item, index) => {
    const path = `${base}[${index}]`;
    if (!isPlainObject(item)) {
      issues.push({ path, issue: `must be an object, got ${describe(item)}` });
      return;
    }
    const before = issues.length;
    for (const key of Object.keys(item)) {
      if (!REFERENCE_ITEM_KEYS.has(key)) issues.push({ path: `${path}.${key}`, issue: "unknown field" });
    }
    const { url, kind, name, mimeType, durationSeconds, durationToken } = item;
    if (typeof url !== "string" || url.length === 0) {
      issues.push({ path: `${path}.url`, issue: "is required and must be a non-empty string" });
    } else if (url.length > 2048 || !URL.canParse(url)) {
      issues.push({ path: `${path}.url`, issue: "must be an absolute URL of at most 2048 characters" });
    }
    if (typeof kind !== "string" || !(policy.kinds as string[]).includes(kind)) {
      issues.push({ path: `${path}.kind`, issue: `must be one of ${policy.kinds.map((k) => `"${k}"`).join(", ")}` });
    }
    if (name !== undefined && (typeof name !== "string" || name.length > 255)) {
      issues.push({ path: `${path}.name`, issue: "must be a string of at most 255 characters" });
    }
    if (mimeType !== undefined && (typeof mimeType !== "string" || mimeType.length > 255)) {
      issues.push({ path: `${path}.mimeType`, issue: "must be a string" });
    }
    if (durationSeconds !== undefined && (typeof durationSeconds !== "number" || !(durationSeconds > 0))) {
      issues.push({ path: `${path}.durationSeconds`, issue: "must be a positive number" });
    }
    if (durationToken !== undefined && (typeof durationToken !== "string" || durationToken.length > 1024)) {
      issues.push({ path: `${path}.durationToken`, issue: "must be a string" });
    }
    if (issues.length === before) items.push(item as ReferenceMediaItem);
  });
  return items;
}

function validatePrompt(model: ModelEntry, prompt: unknown, issues: ErrorDetail[]): string {
  if (typeof prompt !== "string") {
    issues.push({
      path: "prompt",
      issue: prompt === undefined ? "is required" : `must be a string, got ${describe(prompt)}`,
    });
    return "";
  }
  if (prompt.trim().length === 0) issues.push({ path: "prompt", issue: "must not be empty" });
  if (prompt.includes("\u0000")) issues.push({ path: "prompt", issue: "must not contain NUL characters" });
  if (!isWellFormed(prompt)) issues.push({ path: "prompt", issue: "must be valid Unicode (it has a lone surrogate)" });
  const codePoints = [...prompt].length;
  if (codePoints > model.max_prompt_length) {
    issues.push({
      path: "prompt",
      issue: `must be at most ${model.max_prompt_length} characters for ${model.id}, got ${codePoints}`,
    });
  }
  return prompt;
}

export function validateGenerationRequest(body: unknown, catalog: readonly ModelEntry[] = CATALOG): ValidationResult {
  const issues: ErrorDetail[] = [];
  if (!isPlainObject(body)) {
    return { ok: false, issues: [{ path: "", issue: `request body must be a JSON object, got ${describe(body)}` }] };
  }
  for (const key of Object.keys(body)) {
    if (!TOP_LEVEL_KEYS.has(key)) {
      const hint = key === "files" ? " (reference media goes in params.referenceMediaItems)" : "";
      issues.push({ path: key, issue: `unknown field${hint}` });
    }
  }

  let clientRequestId: string | null = null;
  const rawClientId = body.client_request_id;
  if (rawClientId !== undefined && rawClientId !== null) {
    if (typeof rawClientId !== "string") {
      issues.push({ path: "client_request_id", issue: `must be a string, got ${describe(rawClientId)}` });
    } else if (!isWellFormed(rawClientId)) {
      issues.push({ path: "client_request_id", issue: "must be valid Unicode (it has a lone surrogate)" });
    } else if (rawClientId.length > MAX_CLIENT_REQUEST_ID_LENGTH) {
      issues.push({ path: "client_request_id", issue: `must be at most ${MAX_CLIENT_REQUEST_ID_LENGTH} characters` });
    } else {
      clientRequestId = rawClientId;
    }
  }

  if (typeof body.model !== "string" || body.model.length === 0) {
    issues.push({ path: "model", issue: body.model === undefined ? "is required" : "must be a non-empty string" });
    return { ok: false, issues };
  }
  const model = findModel(body.model, catalog);
  if (!model) {
    issues.push({ path: "model", issue: `unknown model "${body.model.slice(0, 100)}"; see GET /api/v1/models` });
    return { ok: false, issues };
  }
  if (model.api_status !== "available") {
    issues.push({ path: "model", issue: `model ${model.id} is not available through the API` });
  }

  const prompt = validatePrompt(model, body.prompt, issues);

  const params: Record<string, string> = {};
  let referenceMediaItems: ReferenceMediaItem[] = [];
  const rawParams = body.params ?? {};
  if (!isPlainObject(rawParams)) {
    issues.push({ path: "params", issue: `must be an object, got ${describe(rawParams)}` });
  } else {
    const known = new Map(model.params.map((p) => [p.key, p]));
    for (const [key, value] of Object.entries(rawParams)) {
      if (key === REFERENCE_KEY) {
        referenceMediaItems = validateReferenceItems(model, value, issues);
        continue;
      }
      const param = known.get(key);
      if (!param) {
        const allowed = [...known.keys(), ...(model.reference_media ? [REFERENCE_KEY] : [])].join(", ");
        issues.push({ path: `params.${key}`, issue: `unknown parameter for ${model.id}; allowed: ${allowed}` });
        continue;
      }
      const checked = validateParam(param, value);
      if (checked.issue) issues.push({ path: `params.${key}`, issue: checked.issue });
      else if (checked.value !== undefined) params[key] = checked.value;
    }
    for (const param of model.params) {
      if (params[param.key] !== undefined) continue;
      if (param.required && rawParams[param.key] === undefined) {
        issues.push({ path: `params.${param.key}`, issue: "is required" });
      } else if (param.default !== null && rawParams[param.key] === undefined) {
        params[param.key] = String(param.default);
      }
    }
  }

  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, value: { model, prompt, params, referenceMediaItems, clientRequestId } };
}

/** One sentence for error.message that names the first problem and how many others there are. */
export function summarizeIssues(issues: ErrorDetail[]): string {
  const first = issues[0];
  if (!first) return "The request is invalid.";
  const where = first.path ? `${first.path} ${first.issue}` : first.issue;
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more issue${issues.length > 2 ? "s" : ""})` : "";
  return `Invalid request: ${where}${more}.`;
}
