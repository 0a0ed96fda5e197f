import { describe, expect, it } from "vitest";
import { CUSTOMER_NAV, href, OPERATOR_NAV, parseRoute, pathOf } from "./routes.js";

describe("console routes", () => {
  it("parses every page", () => {
    expect(parseRoute("/console")).toEqual({ name: "overview" });
    expect(parseRoute("/console/")).toEqual({ name: "overview" });
    const list = parseRoute("/console/generations", "?status=failed");
    expect(list.name).toBe("generations");
    expect(list.name === "generations" && list.query.get("status")).toBe("failed");
    expect(parseRoute("/console/generations/task_abc")).toEqual({ name: "generation", id: "task_abc" });
    expect(parseRoute("/console/generations/a%2Fb")).toEqual({ name: "generation", id: "a/b" });
    expect(parseRoute("/console/playground")).toEqual({ name: "playground" });
    expect(parseRoute("/console/keys")).toEqual({ name: "keys" });
    expect(parseRoute("/console/webhooks")).toEqual({ name: "webhooks" });
    expect(parseRoute("/console/webhooks/we_1")).toEqual({ name: "webhook", id: "we_1" });
    expect(parseRoute("/console/ledger", "?type=refund").name).toBe("ledger");
    expect(parseRoute("/console/accounts")).toEqual({ name: "accounts" });
    expect(parseRoute("/console/accounts/acct_1")).toEqual({ name: "account", id: "acct_1" });
    const tasks = parseRoute("/console/tasks", "?provider=fal");
    expect(tasks.name === "tasks" && tasks.query.get("provider")).toBe("fal");
    expect(parseRoute("/console/tasks/task_1")).toEqual({ name: "task", id: "task_1" });
  });

  it("answers not-found for anything else", () => {
    expect(parseRoute("/console/nope")).toEqual({ name: "not-found", path: "/console/nope" });
    expect(parseRoute("/console/generations/x/y").name).toBe("not-found");
    expect(parseRoute("/console/keys/key_1").name).toBe("not-found");
    expect(parseRoute("/console/playground/x").name).toBe("not-found");
    expect(parseRoute("/console/toString").name).toBe("not-found");
    expect(parseRoute("/console/constructor/x").name).toBe("not-found");
  });

  it("builds hrefs with only the set query values", () => {
    expect(href("/")).toBe("/console");
    expect(href("/generations", { status: "failed", client_request_id: undefined })).toBe(
      "/console/generations?status=failed",
    );
  });

  it("pathOf is parseRoute's reverse for every page in either navigation", () => {
    for (const link of [...CUSTOMER_NAV, ...OPERATOR_NAV]) {
      for (const name of link.routes) {
        const route = parseRoute(pathOf(name, "id_1/x"));
        expect(route.name).toBe(name);
        if ("id" in route) expect(route.id).toBe("id_1/x");
      }
      expect(parseRoute(href(link.path)).name).toBe(link.routes[0]);
    }
    expect(() => pathOf("generation")).toThrow(/without an id/);
    expect(() => pathOf("not-found")).toThrow(/no path/);
  });
});
