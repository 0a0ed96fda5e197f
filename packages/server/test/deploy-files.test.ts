/**
 * The deployment examples in deploy/ cannot run here (no Docker, no cluster), so their
 * structure is checked instead: every variable they give a framegate process is one the
 * configuration reads, compose runs PostgreSQL, MinIO, a one-shot migration and two API and two
 * worker replicas, the Kubernetes Deployments probe the right paths, and no secret is committed.
 * Pure file reads: no store, no network.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { CONFIG_KEYS } from "../src/config.js";
import { Metrics } from "../src/observability/metrics.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const DEPLOY = join(ROOT, "deploy");
const K8S = join(DEPLOY, "kubernetes");
/** Read by `framegate worker` only; allowed whether or not the schema lists it. */
const KNOWN = new Set([...CONFIG_KEYS, "HEALTH_PORT"]);
const COMMANDS = ["api", "worker", "migrate"];

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML is walked loosely; expectations check the shape.
type Doc = any;

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(entry.name) ? [path] : [];
  });
}

/** Every document of a file; YAML 1.1 merge keys (`<<: *anchor`) resolved as compose does. */
function load(path: string): Doc[] {
  return parseAllDocuments(readFileSync(path, "utf8"), { merge: true }).map((doc) => {
    expect(doc.errors, `${relative(ROOT, path)}: ${doc.errors.join("; ")}`).toEqual([]);
    return doc.toJS({ maxAliasCount: 1000 });
  });
}

/** KEY=value lines of a dotenv file. */
function dotenv(path: string): Map<string, string> {
  const entries = readFileSync(path, "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith("#"))
    .map((line) => {
      const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
      expect(match, `not a KEY=value line: ${line}`).not.toBeNull();
      return [match?.[1] as string, match?.[2] as string] as const;
    });
  return new Map(entries);
}

/** A placeholder, an empty value, or something no one would mistake for a credential. */
function looksLikeRealSecret(name: string, value: string): boolean {
  const v = value.replace(/^["']|["']$/g, "");
  if (/rvya_sk_|AKIA[0-9A-Z]{16}|-----BEGIN/.test(v)) return true;
  if (!/PASSWORD|SECRET|TOKEN|KEY/.test(name)) return false;
  if (v === "" || v.includes("change-me")) return false;
  // Connection strings: only their password part is secret.
  const password = /^\w+:\/\/[^:/@]+:([^@]*)@/.exec(v)?.[1];
  if (password !== undefined) return password !== "" && !password.includes("change-me");
  return true;
}

describe("deploy/ files", () => {
  const files = yamlFiles(DEPLOY);

  it("every YAML file parses", () => {
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const file of files) expect(load(file).length).toBeGreaterThan(0);
  });

  describe("docker-compose.yml", () => {
    const compose: Doc = load(join(DEPLOY, "docker-compose.yml"))[0];
    const services: Record<string, Doc> = compose.services;
    const isFramegate = (s: Doc) => String(s.image ?? "").startsWith("framegate") || s.build !== undefined;
    const framegate = Object.entries(services).filter(([, s]) => isFramegate(s));
    const command = (s: Doc) => (Array.isArray(s.command) ? s.command.join(" ") : String(s.command));
    const envOf = (s: Doc): Record<string, unknown> =>
      Array.isArray(s.environment)
        ? Object.fromEntries(s.environment.map((e: string) => [e.split("=")[0], e.split("=").slice(1).join("=")]))
        : (s.environment ?? {});
    const replicas = (cmd: string) =>
      framegate.filter(([, s]) => command(s) === cmd).reduce((n, [, s]) => n + (s.deploy?.replicas ?? 1), 0);

    it("runs postgres, minio and framegate's migrate, api and worker commands only", () => {
      expect(services.postgres?.image).toMatch(/^postgres:15/);
      expect(services.postgres?.healthcheck).toBeDefined();
      expect(services.minio?.image).toMatch(/^minio\/minio/);
      expect(Object.values(services).some((s) => String(s.image).startsWith("minio/mc"))).toBe(true);
      expect(framegate.length).toBeGreaterThanOrEqual(3);
      for (const [name, s] of framegate) expect(COMMANDS, name).toContain(command(s));
      expect(replicas("migrate")).toBe(1);
      expect(replicas("api")).toBe(2);
      expect(replicas("worker")).toBe(2);
    });

    it("gives framegate containers only variables the configuration reads, SIGNING_SECRET to all", () => {
      for (const [name, s] of framegate) {
        const env = envOf(s);
        for (const key of Object.keys(env))
          expect(KNOWN.has(key), `${name}: ${key} is not a config variable`).toBe(true);
        expect(env.SIGNING_SECRET, name).toBeTruthy();
        expect(env.DATABASE_URL, name).toMatch(/^postgres(ql)?:\/\//);
        expect(env.STORAGE_DRIVER, name).toBe("s3");
        expect(env.HOST, name).toBe("0.0.0.0");
      }
      for (const [name, s] of framegate.filter(([, s]) => command(s) === "worker")) {
        expect(envOf(s).PUBLIC_BASE_URL, name).toBeTruthy();
        expect(envOf(s).HEALTH_PORT, name).toBeTruthy();
      }
    });

    it("starts api and worker after a successful migration and probes their /readyz", () => {
      expect(services.migrate?.depends_on?.postgres?.condition).toBe("service_healthy");
      for (const [name, s] of framegate.filter(([, s]) => command(s) !== "migrate")) {
        const migrate = Object.entries(s.depends_on ?? {}).find(([dep]) => command(services[dep]) === "migrate");
        expect((migrate?.[1] as Doc)?.condition, name).toBe("service_completed_successfully");
        const env = envOf(s);
        const port = command(s) === "worker" ? env.HEALTH_PORT : env.PORT;
        const probe = [s.healthcheck?.test].flat();
        for (const part of probe) expect(typeof part, `${name}: healthcheck parts are strings`).toBe("string");
        expect(probe.join(" "), name).toContain(`127.0.0.1:${port}/readyz`);
        const grace = Number(env.SHUTDOWN_GRACE_SECONDS ?? 10);
        expect(Number.parseInt(String(s.stop_grace_period), 10), name).toBeGreaterThan(grace);
      }
    });

    it("takes every variable it interpolates from .env.example", () => {
      const example = dotenv(join(DEPLOY, ".env.example"));
      const text = readFileSync(join(DEPLOY, "docker-compose.yml"), "utf8");
      const used = new Set([...text.matchAll(/(?<!\$)\$\{([A-Z][A-Z0-9_]*)/g)].map((m) => m[1] as string));
      expect(used.size).toBeGreaterThan(0);
      for (const name of used) expect(example.has(name), `${name} missing from .env.example`).toBe(true);
    });

    it(".env.example holds placeholders, never real-looking secrets", () => {
      const example = dotenv(join(DEPLOY, ".env.example"));
      for (const [name, value] of example) expect(looksLikeRealSecret(name, value), name).toBe(false);
      expect(readFileSync(join(DEPLOY, ".gitignore"), "utf8")).toMatch(/^\.env$/m);
    });
  });

  describe("kubernetes/", () => {
    const docs: Doc[] = yamlFiles(K8S)
      .filter((f) => !f.endsWith("kustomization.yaml"))
      .flatMap((f) => load(f));
    const byKind = (kind: string) => docs.filter((d) => d?.kind === kind);
    const deployment = (name: string) => byKind("Deployment").find((d) => d.metadata.name === name);
    const config: Record<string, string> = byKind("ConfigMap")[0]?.data ?? {};
    const secret: Record<string, string> = byKind("Secret")[0]?.stringData ?? {};
    const grace = Number(config.SHUTDOWN_GRACE_SECONDS ?? 10);

    it("kustomization.yaml lists every manifest, and no manifest pins a namespace", () => {
      const kustomization: Doc = load(join(K8S, "kustomization.yaml"))[0];
      const manifests = readdirSync(K8S).filter((f) => /\.ya?ml$/.test(f) && f !== "kustomization.yaml");
      expect([...kustomization.resources].sort()).toEqual(manifests.sort());
      for (const doc of docs) expect(doc.metadata?.namespace, doc.metadata?.name).toBeUndefined();
    });

    it("sets only variables the configuration reads; secrets are placeholders", () => {
      expect(Object.keys(config).length).toBeGreaterThan(0);
      expect(secret.SIGNING_SECRET).toBeDefined();
      expect(secret.DATABASE_URL).toMatch(/^postgres(ql)?:\/\//);
      for (const key of [...Object.keys(config), ...Object.keys(secret)]) {
        expect(KNOWN.has(key), `${key} is not a config variable`).toBe(true);
      }
      for (const [name, value] of Object.entries(secret)) expect(looksLikeRealSecret(name, value), name).toBe(false);
      expect(config.HOST).toBe("0.0.0.0");
      expect(config.PUBLIC_BASE_URL).toMatch(/^https?:\/\//);
    });

    it("every framegate container runs api, worker or migrate with the shared ConfigMap and Secret", () => {
      const workloads = [...byKind("Deployment"), ...byKind("Job")];
      expect(byKind("Job").length).toBe(1);
      for (const w of workloads) {
        for (const c of w.spec.template.spec.containers) {
          expect(COMMANDS, w.metadata.name).toContain([c.args ?? c.command].flat().join(" "));
          const refs = (c.envFrom ?? []).map((e: Doc) => e.configMapRef?.name ?? e.secretRef?.name);
          expect(refs, w.metadata.name).toEqual(["framegate-config", "framegate-secrets"]);
          for (const e of c.env ?? []) expect(KNOWN.has(e.name), `${w.metadata.name}: ${e.name}`).toBe(true);
        }
      }
      expect(byKind("Job")[0].spec.template.spec.containers[0].args).toEqual(["migrate"]);
    });

    it.each([
      ["framegate-api", "api"],
      ["framegate-worker", "worker"],
    ])("%s: 2 replicas, /readyz and /healthz probes on its port, a grace period above the shutdown's", (name, role) => {
      const d = deployment(name);
      expect(d, name).toBeDefined();
      expect(d.spec.replicas).toBe(2);
      const pod = d.spec.template.spec;
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(grace);
      const [c] = pod.containers;
      expect(c.args).toEqual([role]);
      expect(c.resources?.requests).toBeDefined();
      expect(c.resources?.limits).toBeDefined();
      expect(c.readinessProbe?.httpGet?.path).toBe("/readyz");
      expect(c.livenessProbe?.httpGet?.path).toBe("/healthz");
      // The probes' port: the API's PORT, or the worker's HEALTH_PORT.
      const env: Record<string, string> = {
        ...config,
        ...Object.fromEntries((c.env ?? []).map((e: Doc) => [e.name, e.value])),
      };
      const expected = Number(role === "worker" ? env.HEALTH_PORT : env.PORT);
      expect(expected).toBeGreaterThan(0);
      const portOf = (p: string | number) =>
        typeof p === "number" ? p : c.ports.find((x: Doc) => x.name === p)?.containerPort;
      expect(portOf(c.readinessProbe.httpGet.port)).toBe(expected);
      expect(portOf(c.livenessProbe.httpGet.port)).toBe(expected);
      // Selector and pod labels agree, or the Deployment is rejected.
      for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) {
        expect(d.spec.template.metadata.labels[k]).toBe(v);
      }
    });

    it("the Service routes to the API pods' named port", () => {
      const service = byKind("Service").find((s) => s.metadata.name === "framegate-api");
      const api = deployment("framegate-api");
      expect(service.spec.selector).toEqual(api.spec.selector.matchLabels);
      const target = service.spec.ports[0].targetPort;
      expect(api.spec.template.spec.containers[0].ports.map((p: Doc) => p.name)).toContain(target);
    });
  });

  it("the Dockerfile builds on node:20-bookworm-slim, runs as non-root, and enters through the CLI", () => {
    const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
    expect(dockerfile).toMatch(/node:20-bookworm-slim/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "packages\/cli\/bin\/framegate\.js"\]$/m);
    expect(dockerfile).toMatch(/npm prune --omit=dev/);
    expect(existsSync(join(ROOT, ".dockerignore"))).toBe(true);
    // A copied *.tsbuildinfo without its dist/ would make `tsc -b` skip the build.
    expect(readFileSync(join(ROOT, ".dockerignore"), "utf8")).toMatch(/tsbuildinfo/);
  });
});

/**
 * The metric families a Framegate process exports, by type, as its registry renders them (the
 * `# TYPE` lines of an empty one; prom-client's default process metrics left out).
 */
async function exportedMetrics(): Promise<Record<string, string>> {
  const { body } = await new Metrics({ defaultMetrics: false }).render();
  return Object.fromEntries([...body.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1] as string, m[2] as string]));
}

/** What an operator needs on the dashboard (issue 16): each must be exported and shown. */
const ON_THE_DASHBOARD = [
  "framegate_http_request_duration_seconds",
  "framegate_rate_limited_total",
  "framegate_tasks_total",
  "framegate_task_duration_seconds",
  "framegate_queue_jobs",
  "framegate_queue_oldest_job_age_seconds",
  "framegate_provider_requests_total",
  "framegate_provider_request_duration_seconds",
  "framegate_provider_circuit_open",
  "framegate_webhook_deliveries_total",
  "framegate_webhook_delivery_duration_seconds",
  "framegate_credits_total",
  "framegate_upload_bytes_total",
];

/** The series names a family puts in PromQL: a histogram's _bucket, _sum and _count. */
function seriesNames(family: string, type: string): string[] {
  return type === "histogram" ? [`${family}_bucket`, `${family}_sum`, `${family}_count`] : [family];
}

describe("deploy/grafana/framegate-dashboard.json", () => {
  const dashboard: Doc = JSON.parse(readFileSync(join(DEPLOY, "grafana", "framegate-dashboard.json"), "utf8"));
  const panels: Doc[] = dashboard.panels;
  const queryPanels = panels.filter((p) => p.type !== "row");
  /** Every PromQL expression: the panels' targets and the template variables' queries. */
  const expressions: string[] = [
    ...queryPanels.flatMap((p) => p.targets.map((t: Doc) => t.expr as string)),
    ...dashboard.templating.list.filter((v: Doc) => v.type === "query").map((v: Doc) => v.definition as string),
  ];

  it("is a dashboard Grafana imports: schemaVersion, a uid, unique panel ids, every panel placed", () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(dashboard.title).toBe("Framegate");
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) {
      expect(p.gridPos, p.title).toMatchObject({ h: expect.any(Number), w: expect.any(Number), x: expect.any(Number) });
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
    }
    for (const p of queryPanels) {
      expect(p.targets.length, p.title).toBeGreaterThan(0);
      expect(p.description, p.title).toBeTruthy();
    }
  });

  it("asks for its Prometheus data source: a variable, never a hard-coded uid", () => {
    const variable = dashboard.templating.list.find((v: Doc) => v.type === "datasource");
    expect(variable).toMatchObject({ name: "datasource", query: "prometheus" });
    const sources: Doc[] = [];
    const walk = (node: Doc) => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === "object") {
        for (const [key, value] of Object.entries(node)) {
          if (key === "datasource" && typeof value === "object") sources.push(value);
          walk(value);
        }
      }
    };
    walk(dashboard.panels);
    walk(dashboard.templating.list.filter((v: Doc) => v.type !== "datasource"));
    expect(sources.length).toBeGreaterThan(queryPanels.length);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template literal
    for (const source of sources) expect(source).toEqual({ type: "prometheus", uid: "${datasource}" });
  });

  it("queries only metrics Framegate exports, and shows every one an operator needs", async () => {
    const metrics = await exportedMetrics();
    expect(Object.keys(metrics)).toContain("framegate_tasks_total");
    const known = new Set(Object.entries(metrics).flatMap(([family, type]) => seriesNames(family, type)));
    const used = new Set<string>();
    for (const expr of expressions) {
      expect(expr, "an expression").toMatch(/framegate_/);
      for (const name of expr.match(/\bframegate_[a-z0-9_]+/g) ?? []) {
        expect(known.has(name), `${name} in ${expr}`).toBe(true);
        used.add(name.replace(/_(bucket|sum|count)$/, ""));
      }
      // Balanced brackets: a cut-off expression fails here rather than in Grafana.
      for (const [open, close] of [
        ["(", ")"],
        ["[", "]"],
        ["{", "}"],
      ] as const) {
        expect(expr.split(open).length, expr).toBe(expr.split(close).length);
      }
    }
    for (const family of ON_THE_DASHBOARD) {
      expect(metrics[family], family).toBeDefined();
      expect(used.has(family), family).toBe(true);
    }
  });
});
