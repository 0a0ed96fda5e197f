/** Starts an HTTP listener for a Hono app, and says where it listens. */
import type { AddressInfo } from "node:net";
import { type ServerType, serve } from "@hono/node-server";

export interface Listener {
  server: ServerType;
  port: number;
  /** A URL this machine can open: http://host:port (see dialableUrl). */
  url: string;
}

/**
 * Addresses that mean "every interface" when listened on. None can be dialled as such (browsers
 * refuse 0.0.0.0; curl only reaches it by accident of the platform), so no URL should name them.
 */
export function isWildcardHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, "$1");
  return bare === "0.0.0.0" || /^[0:]*::?[0:]*$/.test(bare);
}

/**
 * The URL for a listener on host:port: `localhost` for a wildcard address (it reaches both an
 * IPv4 and an IPv6 wildcard listener, from this machine only), an IPv6 host in brackets.
 */
export function dialableUrl(host: string, port: number): string {
  if (isWildcardHost(host)) return `http://localhost:${port}`;
  return `http://${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`;
}

/**
 * The one-line warning for a wildcard HOST without PUBLIC_BASE_URL: the server is reachable from
 * other machines, but the URLs it returns (`baseUrl`, from dialableUrl) name this one only.
 */
export function wildcardHostWarning(host: string, publicBaseUrl: string | undefined, baseUrl: string) {
  if (publicBaseUrl || !isWildcardHost(host)) return undefined;
  return `HOST=${host} listens on every interface, but PUBLIC_BASE_URL is unset: returned URLs use ${baseUrl}, which works on this machine only; set PUBLIC_BASE_URL to the address other machines use`;
}

/** An address that cannot be bound, said in a sentence that names the setting to change. */
export class ListenError extends Error {
  override name = "ListenError";
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

const LISTEN_ADVICE: Record<string, (where: string, setting: string, port: number) => string> = {
  EADDRINUSE: (where, setting, port) =>
    `Cannot listen on ${where}: the port is already in use (another Framegate, or another program). Stop it, or pick another port: ${setting}=${port === 65535 ? port - 1 : port + 1}.`,
  EACCES: (where, setting) =>
    `Cannot listen on ${where}: permission denied (ports below 1024 need privileges). Pick a port above 1023 with ${setting}.`,
  EADDRNOTAVAIL: (where) =>
    `Cannot listen on ${where}: the address is not one of this machine's. Use 127.0.0.1, 0.0.0.0 (every interface) or an address of this machine.`,
};

/**
 * Listens on host:port (0: an ephemeral port). Rejects when the address cannot be bound (in
 * use, not an address of this machine) instead of leaving the error unhandled.
 */
export function listen(
  fetch: (request: Request) => Response | Promise<Response>,
  opts: {
    host: string;
    port: number;
    requestTimeoutMs: number;
    /** The variables that set host and port, for the error message (default HOST and PORT). */
    settings?: { host: string; port: string };
  },
): Promise<Listener> {
  const settings = opts.settings ?? { host: "HOST", port: "PORT" };
  return new Promise((resolve, reject) => {
    // A known cause becomes a sentence naming the setting; anything else stays as Node said it.
    const fail = (error: NodeJS.ErrnoException) => {
      const advice = error.code ? LISTEN_ADVICE[error.code] : undefined;
      if (!advice) return reject(error);
      const where = `${settings.host}=${opts.host} ${settings.port}=${opts.port}`;
      reject(new ListenError(advice(where, settings.port, opts.port), error.code as string));
    };
    const server = serve(
      {
        fetch,
        port: opts.port,
        hostname: opts.host,
        // Node checks request deadlines on this interval (30 s by default): keep it well inside the timeout.
        serverOptions: {
          requestTimeout: opts.requestTimeoutMs,
          connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(opts.requestTimeoutMs / 4))),
        },
      },
      () => {
        server.off("error", fail);
        const port = (server.address() as AddressInfo).port;
        resolve({ server, port, url: dialableUrl(opts.host, port) });
      },
    );
    server.once("error", fail);
  });
}

/** Stops accepting connections and drops idle keep-alive ones; resolves when all are closed. */
export function closeListener(server: ServerType): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
  return closed;
}
