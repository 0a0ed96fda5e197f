/** Starts an HTTP listener for a Hono app, and says where it listens. */
import type { AddressInfo } from "node:net";
import { type ServerType, serve } from "@hono/node-server";

export interface Listener {
  server: ServerType;
  port: number;
  /** http://host:port, with an IPv6 host in brackets. */
  url: string;
}

/**
 * Listens on host:port (0: an ephemeral port). Rejects when the address cannot be bound (in
 * use, not an address of this machine) instead of leaving the error unhandled.
 */
export function listen(
  fetch: (request: Request) => Response | Promise<Response>,
  opts: { host: string; port: number; requestTimeoutMs: number },
): Promise<Listener> {
  return new Promise((resolve, reject) => {
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
        server.off("error", reject);
        const port = (server.address() as AddressInfo).port;
        resolve({ server, port, url: `http://${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${port}` });
      },
    );
    server.once("error", reject);
  });
}

/** Stops accepting connections and drops idle keep-alive ones; resolves when all are closed. */
export function closeListener(server: ServerType): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
  return closed;
}
