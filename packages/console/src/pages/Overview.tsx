/** The customer's overview: balance, 30 days of usage, the latest tasks. */
import { useQuery } from "@tanstack/preact-query";
import { client } from "../api.js";
import { formatCredits } from "../format.js";
import { href } from "../routes.js";
import { Card, Empty, ErrorState, Loading } from "../ui.js";
import { TaskTable } from "./TaskTable.js";
import { UsageChart } from "./UsageChart.js";

const RECENT = 5;

export function Overview() {
  const credits = useQuery({ queryKey: ["credits"], queryFn: () => client.credits.retrieve() });
  // The server's default range is the 30 days up to the end of today (UTC), in day buckets.
  const usage = useQuery({ queryKey: ["usage", "30d"], queryFn: () => client.credits.usage({ granularity: "day" }) });
  const recent = useQuery({
    queryKey: ["generations", "recent"],
    queryFn: async () => (await client.generations.list({ limit: RECENT })).data,
  });

  return (
    <>
      <h1>Overview</h1>
      <div class="grid">
        <Card title="Balance" id="balance-heading">
          {credits.isPending ? (
            <Loading label="Loading the balance…" />
          ) : credits.isError ? (
            <ErrorState error={credits.error} onRetry={() => credits.refetch()} />
          ) : (
            <p class="balance">{formatCredits(credits.data.current_credits)}</p>
          )}
        </Card>
        <Card title="Usage, last 30 days" id="usage-heading">
          {usage.isPending ? (
            <Loading label="Loading usage…" />
          ) : usage.isError ? (
            <ErrorState error={usage.error} onRetry={() => usage.refetch()} />
          ) : usage.data.totals.tasks_created === 0 && usage.data.totals.credits_charged === 0 ? (
            <Empty>No generations in the last 30 days.</Empty>
          ) : (
            <>
              <UsageChart buckets={usage.data.data} />
              <p class="muted">
                {usage.data.totals.tasks_created} tasks created, {usage.data.totals.tasks_succeeded} succeeded,{" "}
                {usage.data.totals.tasks_failed} failed, {usage.data.totals.tasks_canceled} canceled.
              </p>
            </>
          )}
        </Card>
      </div>
      <Card title="Recent generations" id="recent-heading">
        {recent.isPending ? (
          <Loading label="Loading recent generations…" />
        ) : recent.isError ? (
          <ErrorState error={recent.error} onRetry={() => recent.refetch()} />
        ) : recent.data.length === 0 ? (
          <Empty>No generations yet. Create one with the API, the SDK or the CLI.</Empty>
        ) : (
          <>
            <TaskTable tasks={recent.data} caption="Recent generations" />
            <p>
              <a href={href("/generations")}>All generations</a>
            </p>
          </>
        )}
      </Card>
    </>
  );
}
