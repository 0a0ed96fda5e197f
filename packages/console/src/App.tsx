/** The shell: who is signed in decides between the sign-in page and the console's pages. */
import { useQuery, useQueryClient } from "@tanstack/preact-query";
import { useEffect, useState } from "preact/hooks";
import { errorMessage, fetchSession, type Session, signOut } from "./api.js";
import { ApiKeys } from "./pages/ApiKeys.js";
import { GenerationDetail } from "./pages/GenerationDetail.js";
import { Generations } from "./pages/Generations.js";
import { Ledger } from "./pages/Ledger.js";
import { Overview } from "./pages/Overview.js";
import { AccountDetail } from "./pages/operator/AccountDetail.js";
import { Accounts } from "./pages/operator/Accounts.js";
import { System } from "./pages/operator/System.js";
import { TaskDetail } from "./pages/operator/TaskDetail.js";
import { Tasks } from "./pages/operator/Tasks.js";
import { Playground } from "./pages/Playground.js";
import { SignIn } from "./pages/SignIn.js";
import { WebhookDetail } from "./pages/WebhookDetail.js";
import { Webhooks } from "./pages/Webhooks.js";
import { useRoute } from "./router.js";
import { CUSTOMER_NAV, href, OPERATOR_NAV, type Route } from "./routes.js";
import { ErrorState, Loading } from "./ui.js";

export function App() {
  const session = useQuery({ queryKey: ["session"], queryFn: fetchSession, staleTime: 60_000 });
  if (session.isPending) return <Loading label="Loading the console…" />;
  if (session.isError) {
    return (
      <main class="page narrow">
        <h1>Framegate console</h1>
        <ErrorState error={session.error} onRetry={() => session.refetch()} />
      </main>
    );
  }
  if (!session.data) return <SignIn />;
  return <Shell session={session.data} />;
}

function Shell({ session }: { session: Session }) {
  const route = useRoute();
  const queryClient = useQueryClient();
  const [signOutError, setSignOutError] = useState<string | null>(null);

  useEffect(() => {
    document.title = `${pageTitle(route, session.kind)} · Framegate console`;
  }, [route, session.kind]);

  const onSignOut = async () => {
    setSignOutError(null);
    try {
      await signOut();
    } catch (error) {
      setSignOutError(errorMessage(error));
      return;
    }
    // Back to the sign-in page, and nothing of the signed-out session's data kept in memory. (Not
    // clear(): that would drop the session query the shell is subscribed to, and with it the update.)
    queryClient.setQueryData(["session"], null);
    queryClient.removeQueries({ predicate: (query) => query.queryKey[0] !== "session" });
  };

  const links = session.kind === "operator" ? OPERATOR_NAV : CUSTOMER_NAV;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <span class="brand">Framegate</span>
        <nav aria-label="Main">
          {links.map((link) => (
            <a
              key={link.path}
              href={href(link.path)}
              aria-current={link.routes.includes(route.name) ? "page" : undefined}
            >
              {link.label}
            </a>
          ))}
        </nav>
        <span class="who" title={session.key_id ?? undefined}>
          {session.kind === "operator" ? "Operator" : session.account_id}
        </span>
        <button type="button" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      {signOutError ? (
        <p class="notice error" role="alert">
          Sign-out failed: {signOutError}
        </p>
      ) : null}
      <main id="main" class="page" tabIndex={-1}>
        {session.kind === "operator" ? <OperatorPage route={route} /> : <CustomerPage route={route} />}
      </main>
    </>
  );
}

function CustomerPage({ route }: { route: Route }) {
  switch (route.name) {
    case "overview":
      return <Overview />;
    case "generations":
      return <Generations query={route.query} />;
    case "generation":
      return <GenerationDetail id={route.id} />;
    case "playground":
      return <Playground />;
    case "keys":
      return <ApiKeys />;
    case "webhooks":
      return <Webhooks />;
    case "webhook":
      return <WebhookDetail id={route.id} />;
    case "ledger":
      return <Ledger query={route.query} />;
    default:
      return <NotFound path={routePath(route)} />;
  }
}

function OperatorPage({ route }: { route: Route }) {
  switch (route.name) {
    case "overview":
      return <System />;
    case "accounts":
      return <Accounts />;
    case "account":
      return <AccountDetail id={route.id} />;
    case "tasks":
      return <Tasks query={route.query} />;
    case "task":
      return <TaskDetail id={route.id} />;
    default:
      return <NotFound path={routePath(route)} />;
  }
}

/** A route that exists for the other kind of session is "not found" here, like an unknown path. */
function routePath(route: Route): string {
  return route.name === "not-found" ? route.path : location.pathname;
}

function NotFound({ path }: { path: string }) {
  return (
    <>
      <h1>Page not found</h1>
      <p>
        Nothing in the console lives at <code>{path}</code>. <a href={href("/")}>Go to the start page</a>.
      </p>
    </>
  );
}

const TITLES: Record<Route["name"], string> = {
  overview: "Overview",
  generations: "Generations",
  generation: "Generation",
  playground: "Playground",
  keys: "API keys",
  webhooks: "Webhooks",
  webhook: "Webhook endpoint",
  ledger: "Ledger",
  accounts: "Accounts",
  account: "Account",
  tasks: "Tasks",
  task: "Task",
  "not-found": "Not found",
};

function pageTitle(route: Route, kind: Session["kind"]): string {
  if (route.name === "overview" && kind === "operator") return "System";
  return "id" in route ? route.id : TITLES[route.name];
}
