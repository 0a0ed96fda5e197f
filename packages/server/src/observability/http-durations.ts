/**
 * framegate_http_request_duration_seconds: the one metric every request records.
 *
 * prom-client's Histogram does a good deal of work per observation: it builds a labels object,
 * validates it and hashes it (sorting the label names) before it counts. On a keyed GET that was
 * 4–6 µs of about 50 (issue 13, measured by switching the recording off). Here each series
 * (route, method, status class) is found by one string key and counts into a plain array; a
 * scrape turns the counts into the same lines prom-client's Histogram writes (cumulative `le`
 * buckets, `+Inf`, `_sum`, `_count`). It is registered like any prom-client metric: the registry
 * only asks a metric for its name, help, type and values.
 */
import type { Metric, MetricValueWithName, Registry } from "prom-client";

type Label = "route" | "method" | "status_class";

interface Series {
  labels: Record<Label, string>;
  /** counts[i]: observations in (buckets[i-1], buckets[i]]; the last slot: above every bucket. */
  counts: Float64Array;
  sum: number;
  count: number;
}

export class HttpDurations {
  readonly type = "histogram" as const;
  readonly aggregator = "sum" as const;
  private readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
    registry: Registry,
  ) {
    if (buckets.some((b, i) => i > 0 && b <= (buckets[i - 1] as number))) {
      throw new RangeError("buckets must increase");
    }
    // Duck-typed: the registry reads name, help, type, aggregator and get()/reset().
    registry.registerMetric(this as unknown as Metric);
  }

  observe(route: string, method: string, statusClass: string, seconds: number): void {
    const key = `${method} ${statusClass} ${route}`;
    let series = this.series.get(key);
    if (series === undefined) {
      series = {
        labels: { route, method, status_class: statusClass },
        counts: new Float64Array(this.buckets.length + 1),
        sum: 0,
        count: 0,
      };
      this.series.set(key, series);
    }
    let i = 0;
    while (i < this.buckets.length && seconds > (this.buckets[i] as number)) i++;
    series.counts[i] = (series.counts[i] as number) + 1;
    series.sum += seconds;
    series.count++;
  }

  async get() {
    const values: MetricValueWithName<string>[] = [];
    for (const { labels, counts, sum, count } of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += counts[i] as number;
        values.push({ labels: { ...labels, le }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { ...labels, le: "+Inf" }, value: count, metricName: `${this.name}_bucket` });
      values.push({ labels: { ...labels }, value: sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...labels }, value: count, metricName: `${this.name}_count` });
    }
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    };
  }

  reset(): void {
    this.series.clear();
  }
}
