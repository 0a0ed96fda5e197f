/** Where a listener says it is, and what a user reads when its address cannot be bound. */
import { createServer, type Server } from "node:net";
import { describe, expect, it } from "vitest";
import { closeListener, dialableUrl, isWildcardHost, ListenError, listen, wildcardHostWarning } from "./listen.js";

const ok = () => new Response("ok");

describe("listener URLs", () => {
  it("never names a wildcard address", () => {
    for (const host of ["0.0.0.0", "::", "[::]", "0:0:0:0:0:0:0:0", "::0"]) {
      expect(isWildcardHost(host), host).toBe(true);
      expect(dialableUrl(host, 8787)).toBe("http://localhost:8787");
    }
    for (const host of ["127.0.0.1", "::1", "localhost", "10.0.0.5", "::ffff:127.0.0.1"]) {
      expect(isWildcardHost(host), host).toBe(false);
    }
    expect(dialableUrl("127.0.0.1", 80)).toBe("http://127.0.0.1:80");
    expect(dialableUrl("::1", 8787)).toBe("http://[::1]:8787");
  });

  it("warns about a wildcard HOST only without PUBLIC_BASE_URL", () => {
    const warning = wildcardHostWarning("0.0.0.0", undefined, "http://localhost:8787");
    expect(warning).toBe(
      "HOST=0.0.0.0 listens on every interface, but PUBLIC_BASE_URL is unset: returned URLs use http://localhost:8787, which works on this machine only; set PUBLIC_BASE_URL to the address other machines use",
    );
    expect(wildcardHostWarning("::", undefined, "http://localhost:1")).toMatch(/^HOST=:: listens on every interface/);
    expect(wildcardHostWarning("0.0.0.0", "https://video.example.com", "https://video.example.com")).toBeUndefined();
    expect(wildcardHostWarning("127.0.0.1", undefined, "http://127.0.0.1:8787")).toBeUndefined();
  });
});

describe("listen", () => {
  it("says which address is in use, and how to pick another", async () => {
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const port = (holder.address() as { port: number }).port;
    try {
      const error = await listen(ok, { host: "127.0.0.1", port, requestTimeoutMs: 1000 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ListenError);
      expect((error as ListenError).code).toBe("EADDRINUSE");
      expect((error as ListenError).message).toBe(
        `Cannot listen on HOST=127.0.0.1 PORT=${port}: the port is already in use (another Framegate, or another program). Stop it, or pick another port: PORT=${port + 1}.`,
      );
      // The admin listener names its own settings.
      const admin = await listen(ok, {
        host: "127.0.0.1",
        port,
        requestTimeoutMs: 1000,
        settings: { host: "ADMIN_HOST", port: "ADMIN_PORT" },
      }).catch((e: unknown) => e);
      expect((admin as Error).message).toMatch(
        /^Cannot listen on ADMIN_HOST=127\.0\.0\.1 ADMIN_PORT=\d+: .* ADMIN_PORT=\d+\.$/,
      );
    } finally {
      holder.close();
    }
  });

  it("answers on the URL it reports", async () => {
    const listener = await listen(ok, { host: "127.0.0.1", port: 0, requestTimeoutMs: 1000 });
    try {
      expect(listener.url).toBe(`http://127.0.0.1:${listener.port}`);
      expect(await (await fetch(listener.url)).text()).toBe("ok");
    } finally {
      await closeListener(listener.server);
    }
  });
});
