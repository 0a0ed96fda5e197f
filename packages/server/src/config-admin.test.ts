/** ADMIN_TOKEN, ADMIN_HOST and ADMIN_PORT: what start-up accepts and what it refuses. */
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.js";

const refusal = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
};

describe("ADMIN_TOKEN", () => {
  it("refuses fewer than 32 characters, and says how to make a good one", () => {
    for (const token of ["change-me", "a".repeat(16), "a".repeat(31)]) {
      const message = refusal({ ADMIN_TOKEN: token });
      expect(message).toContain("ADMIN_TOKEN: must be at least 32 characters");
      expect(message).toContain("openssl rand -hex 32");
      // The message names the rule, never the value.
      expect(message).not.toContain(token);
    }
  });

  it("accepts 32 characters or more; unset or empty leaves the admin API off", () => {
    const token = "0123456789abcdef".repeat(2);
    expect(loadConfig({ ADMIN_TOKEN: token }).adminToken).toBe(token);
    expect(loadConfig({ ADMIN_TOKEN: `${token}${token}` }).adminToken).toBe(`${token}${token}`);
    expect(loadConfig({}).adminToken).toBeUndefined();
    expect(loadConfig({ ADMIN_TOKEN: "" }).adminToken).toBeUndefined();
  });
});

describe("ADMIN_PORT and ADMIN_HOST", () => {
  it("by default the admin API shares the main listener", () => {
    expect(loadConfig({}).adminListener).toBeUndefined();
    // ADMIN_HOST alone opens nothing.
    expect(loadConfig({ ADMIN_HOST: "10.0.0.5" }).adminListener).toBeUndefined();
  });

  it("ADMIN_PORT gives it a listener of its own, on the loopback interface unless ADMIN_HOST says otherwise", () => {
    expect(loadConfig({ ADMIN_PORT: "9090" }).adminListener).toEqual({ host: "127.0.0.1", port: 9090 });
    expect(loadConfig({ ADMIN_PORT: "9090", ADMIN_HOST: "10.0.0.5" }).adminListener).toEqual({
      host: "10.0.0.5",
      port: 9090,
    });
  });

  it("refuses a port that is not one", () => {
    for (const port of ["admin", "-1", "65536", "80.5"]) {
      expect(refusal({ ADMIN_PORT: port })).toContain("ADMIN_PORT: must be a port number");
    }
  });
});
