/** The shell: who is signed in decides between the sign-in page and the console's pages. */
import { useQuery, useQueryClient } from "@tanstack/preact-query";
import { useEffect, useState } from "preact/hooks";
import { errorMessage, fetchSession, type Session, signOut } from "./api.js";
import { GenerationDetail } from "./pages/GenerationDetail.js";
import { Generations } from "./pages/Generations.js";
import { Overview } from "./pages/Overview.js";
import { SignIn } from "./pages/SignIn.js";
import { useRoute } from "./router.js";
import { href, type Route } from "./routes.js";
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
    document.title = `${pageTitle(route)} · Framegate console`;
  }, [route]);

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

  const current = (name: Route["name"]) => (route.name === name ? "page" : undefined);
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <span class="brand">Framegate</span>
        {session.kind === "customer" ? (
          <nav aria-label="Main">
            <a href={href("/")} aria-current={current("overview")}>
              Overview
            </a>
            <a href={href("/generations")} aria-current={route.name === "generation" ? "page" : current("generations")}>
              Generations
            </a>
          </nav>
        ) : null}
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
        {session.kind === "operator" ? <OperatorPlaceholder /> : <CustomerPage route={route} />}
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
    default:
      return (
        <>
          <h1>Page not found</h1>
          <p>
            Nothing in the console lives at <code>{route.path}</code>. <a href={href("/")}>Go to the overview</a>.
          </p>
        </>
      );
  }
}

/** Operator pages (accounts, tasks, providers) are a later increment of the console; said plainly. */
function OperatorPlaceholder() {
  return (
    <>
      <h1>Operator</h1>
      <p>
        You are signed in with the admin token. The operator pages (accounts, credits, tasks across accounts, providers)
        are not in the console yet; the admin API (<code>/admin/v1</code>) and the <code>framegate</code> CLI do all of
        it today.
      </p>
    </>
  );
}

function pageTitle(route: Route): string {
  switch (route.name) {
    case "overview":
      return "Overview";
    case "generations":
      return "Generations";
    case "generation":
      return route.id;
    default:
      return "Not found";
  }
}
