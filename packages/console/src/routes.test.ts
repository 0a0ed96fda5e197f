import { describe, expect, it } from "vitest";
import { href, parseRoute } from "./routes.js";

describe("console routes", () => {
  it("parses the pages of this increment", () => {
    expect(parseRoute("/console")).toEqual({ name: "overview" });
    expect(parseRoute("/console/")).toEqual({ name: "overview" });
    const list = parseRoute("/console/generations", "?status=failed");
    expect(list.name).toBe("generations");
    expect(list.name === "generations" && list.query.get("status")).toBe("failed");
    expect(parseRoute("/console/generations/task_abc")).toEqual({ name: "generation", id: "task_abc" });
    expect(parseRoute("/console/generations/a%2Fb")).toEqual({ name: "generation", id: "a/b" });
  });

  it("answers not-found for anything else", () => {
    expect(parseRoute("/console/nope")).toEqual({ name: "not-found", path: "/console/nope" });
    expect(parseRoute("/console/generations/x/y").name).toBe("not-found");
  });

  it("builds hrefs with only the set query values", () => {
    expect(href("/")).toBe("/console");
    expect(href("/generations", { status: "failed", client_request_id: undefined })).toBe(
      "/console/generations?status=failed",
    );
  });
});
