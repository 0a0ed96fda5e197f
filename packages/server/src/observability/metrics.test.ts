import { afterEach, describe, expect, it, vi } from "vitest";
import { type Provider, ProviderError } from "../providers/provider.js";
import { type JobCount, Metrics, QUEUE_STATS_TIMEOUT_MS, statusClass } from "./metrics.js";
import { instrumentProvider } from "./provider-metrics.js";

const CLASSES = { generation: ["generation.submit", "generation.poll"], webhook: ["webhook.deliver"] };

/** The exposition lines of one family (samples only). */
function lines(text: string, family: string): string[] {
  return text.split("\n").filter((l) => l.startsWith(`${family}{`) || l.startsWith(`${family} `));
}

async function scrapeErrors(metrics: Metrics): Promise<number | undefined> {
  return (await metrics.scrapeErrors.get()).values.find((v) => v.labels.source === "queue")?.value;
}

describe("queue gauges", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("read the queue once per scrape for both gauges, with a series for every known kind and class", async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const read = vi.fn(
      async (): Promise<JobCount[]> => [
        { kind: "generation.poll", state: "scheduled", count: 4 },
        { kind: "generation.submit", state: "waiting", count: 2, oldestAgeSeconds: 12.5 },
      ],
    );
    metrics.attach({ queue: read, jobClasses: CLASSES });
    const { body } = await metrics.render();
    expect(read).toHaveBeenCalledTimes(1);
    expect(lines(body, "framegate_queue_jobs")).toHaveLength(9);
    expect(body).toContain('framegate_queue_jobs{class="generation",kind="generation.submit",state="waiting"} 2');
    expect(body).toContain('framegate_queue_jobs{class="generation",kind="generation.poll",state="scheduled"} 4');
    expect(body).toContain('framegate_queue_jobs{class="webhook",kind="webhook.deliver",state="waiting"} 0');
    expect(body).toContain('framegate_queue_oldest_job_age_seconds{class="generation"} 12.5');
    expect(body).toContain('framegate_queue_oldest_job_age_seconds{class="webhook"} 0');
    // The next scrape reads again (nothing is cached between scrapes).
    await metrics.render();
    expect(read).toHaveBeenCalledTimes(2);
  });

  it("leave a slow queue read out of the scrape instead of holding it, and count it", async () => {
    vi.useFakeTimers();
    const metrics = new Metrics({ defaultMetrics: false });
    const errors: unknown[] = [];
    metrics.attach({
      queue: () => new Promise<JobCount[]>(() => {}),
      jobClasses: CLASSES,
      onQueueStatsError: (error) => errors.push(error),
    });
    metrics.tasks.inc({ model: "kling-2-6", provider: "simulated", outcome: "succeeded", reason: "" });
    const scrape = metrics.render();
    await vi.advanceTimersByTimeAsync(QUEUE_STATS_TIMEOUT_MS);
    const { body } = await scrape;
    expect(lines(body, "framegate_queue_jobs")).toEqual([]);
    expect(lines(body, "framegate_queue_oldest_job_age_seconds")).toEqual([]);
    // The rest of the scrape is there.
    expect(body).toContain("framegate_tasks_total{");
    // Counted (families are collected together, so it shows from the next scrape on).
    expect(await scrapeErrors(metrics)).toBe(1);
    expect(errors).toHaveLength(1);
  });

  it("leave a failed queue read out too", async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.attach({ queue: () => Promise.reject(new Error("database down")), jobClasses: CLASSES });
    const { body } = await metrics.render();
    expect(lines(body, "framegate_queue_jobs")).toEqual([]);
    expect(await scrapeErrors(metrics)).toBe(1);
  });
});

describe("task outcomes and credits", () => {
  const base = {
    id: "task_1",
    account_id: "acct_1",
    model: "kling-2-6",
    provider: "simulated",
    reserved_credits: 55,
    created_at: "2026-12-07T00:00:00.000Z",
    started_at: "2026-12-07T00:00:02.000Z",
    completed_at: "2026-12-07T00:00:12.000Z",
    updated_at: "2026-12-07T00:00:12.000Z",
  };

  it("count a success's settlement and a failure's refund from the committed row", async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.recordTaskEnded({ ...base, status: "succeeded", final_credits: 40, error_reason: null } as never);
    metrics.recordTaskEnded({
      ...base,
      status: "failed",
      final_credits: 0,
      error_reason: "timeout",
      provider: null,
      started_at: null,
    } as never);
    const { body } = await metrics.render();
    expect(body).toContain('framegate_credits_total{entry_type="settled"} 40');
    expect(body).toContain('framegate_credits_total{entry_type="released"} 15');
    expect(body).toContain('framegate_credits_total{entry_type="refunded"} 55');
    expect(body).toContain(
      'framegate_tasks_total{model="kling-2-6",provider="none",outcome="failed",reason="timeout"} 1',
    );
    // The success ran 10 s; the failure never started: its 12 s were all queue wait.
    expect(body).toContain(
      'framegate_task_duration_seconds_sum{model="kling-2-6",provider="simulated",phase="run"} 10',
    );
    expect(body).toContain(
      'framegate_task_duration_seconds_sum{model="kling-2-6",provider="none",phase="queue_wait"} 12',
    );
  });

  it("count grants and debits as positive amounts of their own types", async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.recordGrant(500);
    metrics.recordGrant(-20);
    const { body } = await metrics.render();
    expect(body).toContain('framegate_credits_total{entry_type="granted"} 500');
    expect(body).toContain('framegate_credits_total{entry_type="debited"} 20');
  });
});

describe("provider calls", () => {
  const fake = (behaviour: () => Promise<never> | Promise<{ upstreamId: string }>): Provider => ({
    name: "fake",
    submit: behaviour,
    poll: async () => ({ state: "pending" }),
  });

  it("are counted by outcome, and the error is passed on unchanged", async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const task = { taskId: "t", model: "kling-2-6", prompt: "p", params: {}, references: [] };
    const errors = [
      new ProviderError("busy", { retryable: true, saturated: true }),
      new ProviderError("5xx", { retryable: true }),
      new ProviderError("bad key", { retryable: false }),
      new Error("bug"),
    ];
    for (const error of errors) {
      await expect(
        instrumentProvider(
          fake(() => Promise.reject(error)),
          metrics,
        ).submit(task),
      ).rejects.toBe(error);
    }
    await instrumentProvider(
      fake(async () => ({ upstreamId: "u" })),
      metrics,
    ).submit(task);
    const { body } = await metrics.render();
    const count = (outcome: string) =>
      lines(body, "framegate_provider_requests_total").find((l) => l.includes(`outcome="${outcome}"`));
    expect(count("saturated")).toMatch(/ 1$/);
    expect(count("retryable_error")).toMatch(/ 2$/);
    expect(count("final_error")).toMatch(/ 1$/);
    expect(count("ok")).toMatch(/ 1$/);
  });

  it("keep an adapter's optional calls absent when it has none", () => {
    const wrapped = instrumentProvider(
      fake(async () => ({ upstreamId: "u" })),
      new Metrics({ defaultMetrics: false }),
    );
    expect(wrapped.cancel).toBeUndefined();
    expect(wrapped.findSubmitted).toBeUndefined();
    expect(wrapped.release).toBeUndefined();
    expect(wrapped.name).toBe("fake");
  });
});

describe("statusClass", () => {
  it("maps statuses to their class, anything else to other", () => {
    expect([200, 302, 404, 429, 499, 503, 42, 600].map(statusClass)).toEqual([
      "2xx",
      "3xx",
      "4xx",
      "4xx",
      "4xx",
      "5xx",
      "other",
      "other",
    ]);
  });
});
