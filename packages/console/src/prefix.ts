/**
 * The path a reverse proxy puts in front of every server path: "" when the server is at a host's
 * root, "/gw" when PUBLIC_BASE_URL is https://example.com/gw/ (the proxy strips it before the
 * server sees a request, as for /docs). The server writes it into index.html as
 * <meta name="framegate-prefix">, so one build works under any prefix; links, API calls and the
 * session endpoint all start with it.
 */
export const PREFIX = readPrefix();

/** The little of the DOM read here: the routes are also compiled and imported without it (tests). */
interface MetaReader {
  querySelector(selector: string): { getAttribute(name: string): string | null } | null;
}

function readPrefix(): string {
  const doc = (globalThis as { document?: MetaReader }).document;
  if (!doc) return "";
  const value = doc.querySelector('meta[name="framegate-prefix"]')?.getAttribute("content") ?? "";
  // Path segments only: anything else (a full URL, a query) is ignored rather than followed.
  return /^(\/[A-Za-z0-9._~%!$&'()*+,;=:@-]+)*$/.test(value) ? value : "";
}
