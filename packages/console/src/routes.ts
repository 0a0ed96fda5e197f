/**
 * The console's client-side routes, parsed from the URL path. The server answers index.html for
 * every /console/… path that is not an asset, so these links survive a reload and can be shared.
 * Customers and operators share the parser; which pages a route shows depends on who is signed in
 * (App.tsx): "/" is a customer's overview and an operator's system page.
 */
export const BASE = "/console";

export type Route =
  | { name: "overview" }
  | { name: "generations"; query: URLSearchParams }
  | { name: "generation"; id: string }
  | { name: "playground" }
  | { name: "keys" }
  | { name: "webhooks" }
  | { name: "webhook"; id: string }
  | { name: "ledger"; query: URLSearchParams }
  | { name: "accounts" }
  | { name: "account"; id: string }
  | { name: "tasks"; query: URLSearchParams }
  | { name: "task"; id: string }
  | { name: "not-found"; path: string };

/** Pages of one path segment: no query, or a query the page reads (its filters). */
const PAGES = new Map<string, "playground" | "keys" | "webhooks" | "accounts">([
  ["playground", "playground"],
  ["keys", "keys"],
  ["webhooks", "webhooks"],
  ["accounts", "accounts"],
]);
const FILTERED = new Map<string, "generations" | "ledger" | "tasks">([
  ["generations", "generations"],
  ["ledger", "ledger"],
  ["tasks", "tasks"],
]);
/** One item of a collection: `/<collection>/<id>`. */
const ITEMS = new Map<string, "generation" | "webhook" | "account" | "task">([
  ["generations", "generation"],
  ["webhooks", "webhook"],
  ["accounts", "account"],
  ["tasks", "task"],
]);

export function parseRoute(pathname: string, search = ""): Route {
  const path = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : pathname;
  const parts = path.split("/").filter(Boolean).map(safeDecode);
  const [first, id] = parts;
  if (first === undefined) return { name: "overview" };
  if (parts.length === 1) {
    const page = PAGES.get(first);
    if (page) return { name: page };
    const filtered = FILTERED.get(first);
    if (filtered) return { name: filtered, query: new URLSearchParams(search) };
  }
  const item = ITEMS.get(first);
  if (parts.length === 2 && item && id) return { name: item, id };
  return { name: "not-found", path: pathname };
}

/** The href of a route inside the console. */
export function href(path: string, query?: Record<string, string | undefined>): string {
  const qs = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) if (value) qs.set(key, value);
  const suffix = qs.toString();
  return `${BASE}${path === "/" ? "" : path}${suffix ? `?${suffix}` : ""}`;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
