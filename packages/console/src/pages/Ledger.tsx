/**
 * The credit ledger (GET /api/v1/credits/ledger, scope credits:read): every movement newest first
 * with the balance after it, a type filter kept in the URL, "Load more", and a CSV export of the
 * whole ledger (or the filtered one) built in the browser from every page the SDK walks.
 */
import type { LedgerEntry, LedgerEntryType } from "@framegate/sdk";
import { PermissionDeniedError } from "@framegate/sdk";
import { useState } from "preact/hooks";
import { client, errorMessage } from "../api.js";
import { downloadText } from "../download.js";
import { formatCredits, formatInstant } from "../format.js";
import { ledgerCsv, ledgerFileName, ledgerQuery, parseLedgerTypes } from "../ledger.js";
import { LoadMore, loadedItems, useCursorPages } from "../paging.js";
import { navigate } from "../router.js";
import { href } from "../routes.js";
import { Empty, ErrorState, Loading } from "../ui.js";
import { LEDGER_TYPE_NAMES, LEDGER_TYPES } from "../vocabulary.js";
import { MissingScope, useSession } from "./account-ui.js";
import "./account.css";

const PAGE_SIZE = 25;
/** The API's largest page: the export walks the ledger in as few requests as it can. */
const EXPORT_PAGE_SIZE = 100;

export function Ledger({ query }: { query: URLSearchParams }) {
  const session = useSession();
  const types = parseLedgerTypes(query);
  if (!session?.scopes.includes("credits:read")) {
    return (
      <>
        <h1>Ledger</h1>
        <MissingScope scope="credits:read" what="read the credit ledger" />
      </>
    );
  }
  return (
    <>
      <h1>Ledger</h1>
      <p class="muted">
        Every credit movement, newest first. The balance always equals the sum of the entries; a generation reserves its
        price when it is created and gets it back if it fails.
      </p>
      <TypeFilter types={types} />
      <Export types={types} />
      <Entries types={types} />
    </>
  );
}

function TypeFilter({ types }: { types: LedgerEntryType[] }) {
  const onSubmit = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const chosen = LEDGER_TYPE_NAMES.filter((t) => form.getAll("type").includes(t));
    navigate(href("/ledger", ledgerQuery(chosen)));
  };
  // Keyed by the URL's filter so the boxes follow back/forward navigation.
  return (
    <form class="filters-inline" aria-label="Filter the ledger" onSubmit={onSubmit} key={types.join(",")}>
      <fieldset class="checks">
        <legend>Types (none chosen: all)</legend>
        <div class="checks-inline">
          {LEDGER_TYPE_NAMES.map((t) => (
            <div key={t} class="check" title={LEDGER_TYPES[t].help}>
              <input id={`ledger-type-${t}`} type="checkbox" name="type" value={t} defaultChecked={types.includes(t)} />
              <label for={`ledger-type-${t}`}>{LEDGER_TYPES[t].label}</label>
            </div>
          ))}
        </div>
      </fieldset>
      <div class="filter-actions">
        <button type="submit" class="primary">
          Apply filter
        </button>
        <a href={href("/ledger")}>Clear</a>
      </div>
    </form>
  );
}

function Entries({ types }: { types: LedgerEntryType[] }) {
  const list = useCursorPages<LedgerEntry>({
    queryKey: ["credits", "ledger", types.join(",")],
    fetchPage: (startingAfter) =>
      client.credits.ledger({ limit: PAGE_SIZE, type: types.length ? types : undefined, startingAfter }),
  });
  if (list.isPending) return <Loading label="Loading the ledger…" />;
  if (list.isError) {
    if (list.error instanceof PermissionDeniedError) {
      return <MissingScope scope="credits:read" what="read the credit ledger" />;
    }
    return <ErrorState error={list.error} onRetry={() => list.refetch()} />;
  }
  const entries = loadedItems(list.data.pages);
  return (
    <>
      <p class="muted" role="status">
        {entries.length
          ? `Showing ${entries.length} entr${entries.length === 1 ? "y" : "ies"}${list.hasNextPage ? "; more below" : ""}.`
          : ""}
      </p>
      {entries.length === 0 ? (
        <Empty>{types.length ? "No entries of these types." : "No entries yet."}</Empty>
      ) : (
        <EntryTable entries={entries} />
      )}
      <LoadMore list={list} />
    </>
  );
}

function EntryTable({ entries }: { entries: LedgerEntry[] }) {
  return (
    // Focusable, so the table can be scrolled sideways from the keyboard on a narrow screen
    // (a page of grants has no link inside to focus).
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be reachable by keyboard (axe scrollable-region-focusable, WCAG 2.1.1)
    <section class="table-wrap" tabIndex={0} aria-label="Ledger entries, newest first">
      <table class="ledger">
        <caption class="visually-hidden">Ledger entries, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Type</th>
            <th scope="col" class="num">
              Amount
            </th>
            <th scope="col" class="num">
              Balance after
            </th>
            <th scope="col">Generation or reason</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr key={e.id}>
              <td class="nowrap">{formatInstant(e.created_at)}</td>
              <td>{LEDGER_TYPES[e.type]?.label ?? e.type}</td>
              <td class={`num nowrap ${e.amount < 0 ? "amount-negative" : "amount-positive"}`}>
                {e.amount > 0 ? "+" : ""}
                {formatCredits(e.amount)}
              </td>
              <td class="num nowrap">{formatCredits(e.balance_after)}</td>
              <td class="wrap-anywhere">
                {e.task_id ? <a href={href(`/generations/${encodeURIComponent(e.task_id)}`)}>{e.task_id}</a> : null}
                {e.task_id && e.reason ? " · " : null}
                {e.reason ?? (e.task_id ? null : <span class="muted">—</span>)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** Walks every page of the (filtered) ledger through the SDK, then saves it as a CSV file. */
function Export({ types }: { types: LedgerEntryType[] }) {
  const [state, setState] = useState<
    | { kind: "idle" }
    | { kind: "running"; count: number }
    | { kind: "done"; count: number }
    | { kind: "error"; message: string }
  >({ kind: "idle" });
  const run = async () => {
    setState({ kind: "running", count: 0 });
    const entries: LedgerEntry[] = [];
    try {
      const pages = await client.credits.ledger({ limit: EXPORT_PAGE_SIZE, type: types.length ? types : undefined });
      for await (const page of pages.iterPages()) {
        entries.push(...page.data);
        setState({ kind: "running", count: entries.length });
      }
    } catch (error) {
      setState({
        kind: "error",
        message: `The export stopped after ${entries.length} entries: ${errorMessage(error)}`,
      });
      return;
    }
    downloadText(ledgerCsv(entries), ledgerFileName(types, new Date()), "text/csv;charset=utf-8");
    setState({ kind: "done", count: entries.length });
  };
  return (
    <div class="toolbar">
      <button type="button" onClick={run} disabled={state.kind === "running"}>
        {types.length ? "Export these entries as CSV" : "Export the whole ledger as CSV"}
      </button>
      <span class="small muted" role="status">
        {state.kind === "running"
          ? `Reading the ledger… ${state.count} entries so far.`
          : state.kind === "done"
            ? `Exported ${state.count} entr${state.count === 1 ? "y" : "ies"}.`
            : ""}
      </span>
      {state.kind === "error" ? (
        <p class="notice error" role="alert">
          {state.message}
        </p>
      ) : null}
    </div>
  );
}
