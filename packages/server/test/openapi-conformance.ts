/**
 * The OpenAPI conformance check: every response a test server sends on a path of the public
 * document is checked against that document (status, headers, body), as it went on the wire.
 * startTestServer observes each server it starts; conformance-setup.ts fails the test in which
 * an undocumented answer was seen. A route that answers something the document does not say
 * therefore fails CI, whichever test happened to provoke it.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Http2Server } from "node:http2";
import { buildOpenApiDocument } from "@framegate/contract";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import formats from "ajv-formats";

// ajv-formats is CommonJS: under NodeNext its plugin is the module's `default` property.
const addFormats = formats.default;

type Json = Record<string, unknown>;

/** One response as the client received it. */
export interface Exchange {
  method: string;
  path: string;
  status: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The body, when the response finished and was small enough to keep. */
  body?: Buffer;
}

/**
 * Headers any HTTP response may carry that an API description does not list: framing,
 * caching, content negotiation and browser security headers. Anything else must be documented.
 */
const GENERIC_HEADERS = new Set([
  "accept-ranges",
  "cache-control",
  "connection",
  "content-disposition",
  "content-encoding",
  "content-length",
  "content-range",
  "content-security-policy",
  "content-type",
  "cross-origin-opener-policy",
  "cross-origin-resource-policy",
  "date",
  "etag",
  "keep-alive",
  "last-modified",
  "referrer-policy",
  "strict-transport-security",
  "transfer-encoding",
  "vary",
  "x-content-type-options",
  "x-frame-options",
]);

/** Bodies above this are not kept (videos); their status and headers are still checked. */
const MAX_BODY_BYTES = 2 * 1024 * 1024;

const DOC_ID = "framegate-openapi.json";

interface Operation {
  responses: Record<string, Json>;
}

interface Route {
  template: string;
  pattern: RegExp;
  item: Record<string, Operation>;
}

class Conformance {
  readonly doc = buildOpenApiDocument() as Json;
  private readonly routes: Route[];
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true });
  /** Header values are strings on the wire: their schemas are checked with type coercion. */
  private readonly headerAjv = new Ajv2020({ strict: false, allErrors: true, coerceTypes: true });
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor() {
    addFormats(this.ajv);
    addFormats(this.headerAjv);
    this.ajv.addSchema({ ...this.doc, $id: DOC_ID });
    this.headerAjv.addSchema({ ...this.doc, $id: DOC_ID });
    const paths = this.doc.paths as Record<string, Record<string, Operation>>;
    // Literal paths before templated ones, so /credits/ledger never reads as /credits/{id}.
    this.routes = Object.entries(paths)
      .map(([template, item]) => ({ template, item, pattern: templatePattern(template) }))
      .sort((a, b) => paramCount(a.template) - paramCount(b.template));
  }

  /** What is wrong with one exchange: empty when the document describes it. */
  check(ex: Exchange): string[] {
    const route = this.routes.find((r) => r.pattern.test(ex.path));
    if (!route) {
      // The public API's namespace: an unknown path still answers in the documented envelope.
      return ex.path.startsWith("/api/") ? this.checkUnrouted(ex) : [];
    }
    const method = ex.method === "HEAD" ? "get" : ex.method.toLowerCase();
    const operation = route.item[method];
    const where = `${ex.method} ${route.template} → ${ex.status}`;
    if (!operation) {
      if (ex.method === "OPTIONS") return [];
      return this.checkMethodNotAllowed(ex, route, where);
    }
    const status = String(ex.status);
    const responseKey = [status, `${status[0]}XX`, "default"].find((k) => operation.responses[k] !== undefined);
    if (!responseKey) return [`${where}: status ${status} is not documented for this operation`];
    const response = this.resolve(
      operation.responses[responseKey] as Json,
      `#/paths/${escapePointer(route.template)}/${method}/responses/${responseKey}`,
    );
    return [...this.checkHeaders(ex, response, where), ...this.checkBody(ex, response, where)];
  }

  private checkUnrouted(ex: Exchange): string[] {
    const where = `${ex.method} ${ex.path} → ${ex.status}`;
    // 404, or 503 public_api_disabled: the switch is checked before routing.
    if (ex.status !== 404 && ex.status !== 503) {
      return [`${where}: a path outside the document answered ${ex.status}, not 404`];
    }
    return this.checkErrorEnvelope(ex, where);
  }

  private checkMethodNotAllowed(ex: Exchange, route: Route, where: string): string[] {
    if (ex.status !== 405) return [`${where}: a method the path does not document answered ${ex.status}, not 405`];
    const problems = this.checkErrorEnvelope(ex, where);
    const allowed = (ex.headers.allow ?? "")
      .split(",")
      .map((m) => m.trim().toLowerCase())
      .filter(Boolean);
    const documented = Object.keys(route.item).filter((m) => HTTP_METHODS.has(m));
    const missing = documented.filter((m) => !allowed.includes(m));
    if (missing.length > 0) problems.push(`${where}: Allow (${ex.headers.allow ?? "absent"}) lacks ${missing}`);
    return problems;
  }

  private checkErrorEnvelope(ex: Exchange, where: string): string[] {
    if (!ex.body) return [];
    if (!isJson(ex.headers["content-type"])) return [`${where}: error body is ${ex.headers["content-type"]}, not JSON`];
    return this.validate("#/components/schemas/Error", parse(ex.body), where, this.ajv);
  }

  private checkHeaders(ex: Exchange, response: Resolved, where: string): string[] {
    const problems: string[] = [];
    const documented = new Map<string, { name: string; spec: Resolved }>();
    for (const [name, spec] of Object.entries((response.node.headers ?? {}) as Record<string, Json>)) {
      documented.set(name.toLowerCase(), {
        name,
        spec: this.resolve(spec, `${response.pointer}/headers/${escapePointer(name)}`),
      });
    }
    for (const [lower, { name, spec }] of documented) {
      const value = ex.headers[lower];
      if (value === undefined) {
        if (spec.node.required === true) problems.push(`${where}: required header ${name} is missing`);
      } else if (spec.node.schema) {
        problems.push(...this.validate(`${spec.pointer}/schema`, value, `${where} header ${name}`, this.headerAjv));
      }
    }
    for (const lower of Object.keys(ex.headers)) {
      if (!GENERIC_HEADERS.has(lower) && !documented.has(lower)) {
        problems.push(`${where}: header ${lower} is sent but not documented`);
      }
    }
    return problems;
  }

  private checkBody(ex: Exchange, response: Resolved, where: string): string[] {
    const content = response.node.content as Record<string, Json> | undefined;
    const type = ex.headers["content-type"];
    if (ex.method === "HEAD" || ex.status === 204 || ex.status === 304) return [];
    if (!content) {
      const hasBody = ex.body ? ex.body.length > 0 : Number(ex.headers["content-length"] ?? "1") > 0;
      return hasBody ? [`${where}: a body (${type ?? "no content type"}) is sent but none is documented`] : [];
    }
    if (!type) return [`${where}: no Content-Type on a response documented with ${Object.keys(content)}`];
    const mediaType = Object.keys(content).find((documented) => mediaTypeMatches(documented, type));
    if (!mediaType) return [`${where}: Content-Type ${type} is not one of ${Object.keys(content)}`];
    if (!isJson(type) || !ex.body || !content[mediaType]?.schema) return [];
    const schema = `${response.pointer}/content/${escapePointer(mediaType)}/schema`;
    return this.validate(schema, parse(ex.body), where, this.ajv);
  }

  /** Validates `value` against the schema at a JSON pointer into the document. */
  private validate(pointer: string, value: unknown, where: string, ajv: Ajv2020): string[] {
    const key = `${ajv === this.ajv ? "body" : "header"} ${pointer}`;
    let validate = this.compiled.get(key);
    if (!validate) {
      validate = ajv.getSchema(`${DOC_ID}${pointer}`);
      if (!validate) return [`${where}: the document has no schema at ${pointer}`];
      this.compiled.set(key, validate);
    }
    if (validate(value)) return [];
    const errors = (validate.errors ?? [])
      .slice(0, 5)
      .map((e) => `${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`);
    return [`${where}: does not match the document: ${errors.join("; ")} (value: ${preview(value)})`];
  }

  /** Follows `$ref`s (a response or header may live in components), keeping where the target is. */
  private resolve(node: Json, pointer: string): Resolved {
    let current: Resolved = { node, pointer };
    for (let hops = 0; typeof current.node.$ref === "string" && hops < 5; hops++) {
      const target = current.node.$ref as string;
      const path = target.replace(/^#\//, "").split("/").map(unescapePointer);
      current = { node: path.reduce<Json>((at, key) => (at[key] ?? {}) as Json, this.doc), pointer: target };
    }
    return current;
  }
}

interface Resolved {
  node: Json;
  /** Its JSON pointer in the document (`#/…`). */
  pointer: string;
}

const HTTP_METHODS = new Set(["get", "put", "post", "delete", "options", "head", "patch", "trace"]);

function templatePattern(template: string): RegExp {
  const escaped = template
    .split(/(\{[^}]+\})/)
    .map((part) => (part.startsWith("{") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${escaped}$`);
}

function paramCount(template: string): number {
  return (template.match(/\{/g) ?? []).length;
}

function escapePointer(segment: string): string {
  return segment.replaceAll("~", "~0").replaceAll("/", "~1");
}

function unescapePointer(segment: string): string {
  return segment.replaceAll("~1", "/").replaceAll("~0", "~");
}

function isJson(type: string | undefined): boolean {
  return type !== undefined && /^application\/(?:[\w.+-]+\+)?json\b/i.test(type);
}

function mediaTypeMatches(documented: string, actual: string): boolean {
  const [type = "", subtype = ""] = actual.split(";")[0]?.trim().toLowerCase().split("/") ?? [];
  const [dType, dSubtype] = documented.toLowerCase().split("/");
  return (dType === "*" || dType === type) && (dSubtype === "*" || dSubtype === subtype);
}

function parse(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return body.toString("utf8");
  }
}

function preview(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

/** The headers as sent: Node keeps the exact header block it wrote. */
function sentHeaders(res: ServerResponse): Record<string, string> {
  const block = (res as unknown as { _header?: string | null })._header;
  const headers: Record<string, string> = {};
  if (typeof block === "string") {
    for (const line of block.split("\r\n").slice(1)) {
      const colon = line.indexOf(":");
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    return headers;
  }
  for (const [name, value] of Object.entries(res.getHeaders())) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : String(value);
  }
  return headers;
}

let conformance: Conformance | undefined;
const violations: string[] = [];
let observed = 0;

/** How many responses the observers have checked (a test of the observer itself reads it). */
export function observedResponses(): number {
  return observed;
}

/** Checks one exchange now (tests of the check itself use this). */
export function checkExchange(ex: Exchange): string[] {
  conformance ??= new Conformance();
  return conformance.check(ex);
}

/** Watches every response of `server` and records what the document does not describe. */
export function observeConformance(server: Server | Http2Server | undefined): void {
  if (!server) return;
  (server as Server).prependListener("request", (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let overflow = false;
    const keep = (chunk: unknown, encoding?: unknown) => {
      if (chunk === undefined || chunk === null || typeof chunk === "function" || overflow) return;
      const buffer =
        typeof chunk === "string"
          ? Buffer.from(chunk, typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8")
          : Buffer.from(chunk as Uint8Array);
      size += buffer.length;
      if (size > MAX_BODY_BYTES) overflow = true;
      else chunks.push(buffer);
    };
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    res.write = ((...args: unknown[]) => {
      keep(args[0], args[1]);
      return write(...args);
    }) as typeof res.write;
    res.end = ((...args: unknown[]) => {
      keep(args[0], args[1]);
      return end(...args);
    }) as typeof res.end;
    let recorded = false;
    const record = (finished: boolean) => {
      if (recorded || !res.headersSent) return;
      recorded = true;
      observed++;
      const path = new URL(req.url ?? "/", "http://x").pathname;
      const ex: Exchange = {
        method: req.method ?? "GET",
        path,
        status: res.statusCode,
        headers: sentHeaders(res),
        ...(finished && !overflow ? { body: Buffer.concat(chunks) } : {}),
      };
      try {
        violations.push(...checkExchange(ex));
      } catch (error) {
        violations.push(`${ex.method} ${path}: the conformance check itself failed: ${(error as Error).stack}`);
      }
    };
    res.once("finish", () => record(true));
    res.once("close", () => record(false));
  });
}

/** The violations seen since the last call, and forgets them. */
export function takeConformanceViolations(): string[] {
  return violations.splice(0, violations.length);
}
