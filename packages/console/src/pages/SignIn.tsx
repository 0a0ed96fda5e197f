/**
 * Sign-in: a customer's API key or, on the Operator tab, the admin token. The value is posted to
 * the session endpoint and dropped: the server answers with an HttpOnly cookie, nothing is stored
 * in the browser, and the field is cleared whatever the outcome.
 */
import { useQueryClient } from "@tanstack/preact-query";
import { useState } from "preact/hooks";
import { HttpError, signIn } from "../api.js";

type Kind = "customer" | "operator";

export function SignIn() {
  const queryClient = useQueryClient();
  const [kind, setKind] = useState<Kind>("customer");
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const onSubmit = async (event: Event) => {
    event.preventDefault();
    const secret = value.trim();
    if (!secret) {
      setError(kind === "customer" ? "Enter an API key." : "Enter the admin token.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const session = await signIn(kind === "customer" ? { api_key: secret } : { admin_token: secret });
      setValue("");
      queryClient.setQueryData(["session"], session);
    } catch (failure) {
      setValue("");
      setError(describe(failure, kind));
    } finally {
      setBusy(false);
    }
  };

  const label = kind === "customer" ? "API key" : "Admin token";
  return (
    <main class="page narrow signin">
      <h1>Sign in to Framegate</h1>
      <div role="tablist" aria-label="Sign in as" class="tabs">
        {(["customer", "operator"] as const).map((k) => (
          <button
            key={k}
            type="button"
            role="tab"
            id={`tab-${k}`}
            aria-selected={kind === k}
            aria-controls="signin-panel"
            tabIndex={kind === k ? 0 : -1}
            onClick={() => {
              setKind(k);
              setError(null);
              setValue("");
            }}
            onKeyDown={(event) => {
              if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
                const next: Kind = k === "customer" ? "operator" : "customer";
                setKind(next);
                setValue("");
                document.getElementById(`tab-${next}`)?.focus();
              }
            }}
          >
            {k === "customer" ? "Customer" : "Operator"}
          </button>
        ))}
      </div>
      {/* The panel is a div: a form may not take the tabpanel role (ARIA in HTML). */}
      <div id="signin-panel" role="tabpanel" aria-labelledby={`tab-${kind}`}>
        <form onSubmit={onSubmit} noValidate>
          <label for="signin-secret">{label}</label>
          <input
            id="signin-secret"
            name="secret"
            type="password"
            autocomplete="off"
            spellcheck={false}
            value={value}
            placeholder={kind === "customer" ? "rvya_sk_…" : ""}
            aria-describedby="signin-hint"
            aria-invalid={error ? true : undefined}
            onInput={(event) => setValue((event.target as HTMLInputElement).value)}
          />
          <p id="signin-hint" class="muted">
            {kind === "customer"
              ? "Your key is exchanged for a session cookie and not stored in the browser."
              : "The server's ADMIN_TOKEN. It is exchanged for a session cookie and not stored in the browser."}
          </p>
          {error ? (
            <p class="notice error" role="alert">
              {error}
            </p>
          ) : null}
          <button type="submit" class="primary" disabled={busy}>
            {busy ? "Signing in…" : "Sign in"}
          </button>
        </form>
      </div>
    </main>
  );
}

function describe(error: unknown, kind: Kind): string {
  if (error instanceof HttpError) {
    if (error.status === 401) return kind === "customer" ? "That API key is not valid." : "That admin token is wrong.";
    if (error.status === 429) {
      return `Too many failed sign-ins. Try again${error.retryAfter ? ` in ${error.retryAfter} s` : " later"}.`;
    }
    return error.message;
  }
  return error instanceof Error ? error.message : "Sign-in failed.";
}
