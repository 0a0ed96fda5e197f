/**
 * The console's client-side routes, parsed from the URL path. The server answers index.html for
 * every /console/… path that is not an asset, so these links survive a reload and can be shared.
 * Customers and operators share the parser; which pages a route shows depends on who is signed in
 * (App.tsx): "/" is a customer's overview and an operator's system page. Behind a proxy's path
 * (PUBLIC_BASE_URL https://x/gw/) every path starts with that prefix (prefix.ts).
 */
import { PREFIX } from "./prefix.js";

export const BASE = `${PREFIX}/console`;

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

/**
 * The top navigation of each kind of session. Each link lists the routes shown as under it
 * (aria-current); together they are every route that kind of session has a page for (App.tsx
 * shows "not found" for the others), which the browser tests use to visit every page.
 */
export interface NavLink {
  path: string;
  label: string;
  /** The routes under this link, marked as the current page. */
  routes: Route["name"][];
}

export const CUSTOMER_NAV: NavLink[] = [
  { path: "/", label: "Overview", routes: ["overview"] },
  { path: "/generations", label: "Generations", routes: ["generations", "generation"] },
  { path: "/playground", label: "Playground", routes: ["playground"] },
  { path: "/keys", label: "API keys", routes: ["keys"] },
  { path: "/webhooks", label: "Webhooks", routes: ["webhooks", "webhook"] },
  { path: "/ledger", label: "Ledger", routes: ["ledger"] },
];

export const OPERATOR_NAV: NavLink[] = [
  { path: "/", label: "System", routes: ["overview"] },
  { path: "/accounts", label: "Accounts", routes: ["accounts", "account"] },
  { path: "/tasks", label: "Tasks", routes: ["tasks", "task"] },
];

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

/**
 * The path of a page by its route's name, the reverse of parseRoute (`id` for one item of a
 * collection). Throws for a name with no path of its own (not-found) or an item without an id.
 */
export function pathOf(name: Route["name"], id?: string): string {
  if (name === "overview") return href("/");
  for (const map of [PAGES, FILTERED] as Map<string, Route["name"]>[]) {
    for (const [segment, page] of map) if (page === name) return href(`/${segment}`);
  }
  for (const [segment, item] of ITEMS) {
    if (item === name && id) return href(`/${segment}/${encodeURIComponent(id)}`);
  }
  throw new Error(`no path for the route ${name}${id ? ` (${id})` : " without an id"}`);
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
