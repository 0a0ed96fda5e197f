/**
 * The console's client-side routes, parsed from the URL path. The server answers index.html for
 * every /console/… path that is not an asset, so these links survive a reload and can be shared.
 */
export const BASE = "/console";

export type Route =
  | { name: "overview" }
  | { name: "generations"; query: URLSearchParams }
  | { name: "generation"; id: string }
  | { name: "not-found"; path: string };

export function parseRoute(pathname: string, search = ""): Route {
  const path = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : pathname;
  const parts = path.split("/").filter(Boolean).map(safeDecode);
  if (parts.length === 0) return { name: "overview" };
  if (parts[0] === "generations" && parts.length === 1) {
    return { name: "generations", query: new URLSearchParams(search) };
  }
  if (parts[0] === "generations" && parts.length === 2 && parts[1]) return { name: "generation", id: parts[1] };
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
