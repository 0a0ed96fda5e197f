/**
 * Pieces shared by the API keys and webhooks pages: a secret shown once with a copy button, an
 * action that asks for confirmation in place, and the explanation shown to a key without a scope.
 */
import { useQuery, useQueryClient } from "@tanstack/preact-query";
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { errorMessage, fetchSession, type Session } from "../api.js";

/** A secret the server shows only in this answer: copy it now, it cannot be read again. */
export function SecretOnce({
  title,
  secret,
  label,
  onDone,
  children,
}: {
  title: string;
  secret: string;
  label: string;
  onDone: () => void;
  children?: ComponentChildren;
}) {
  const [copied, setCopied] = useState<"yes" | "failed" | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  // Focus moves to the new secret, so a keyboard or screen-reader user lands on it.
  useEffect(() => heading.current?.focus(), []);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(secret);
      setCopied("yes");
    } catch {
      setCopied("failed");
    }
  };
  return (
    <section class="card secret-once" aria-labelledby="secret-once-heading">
      <h2 id="secret-once-heading" ref={heading} tabIndex={-1}>
        {title}
      </h2>
      <p class="notice warning">
        <strong>Copy it now.</strong> This is the only time it is shown: the server keeps only a hash. If it is lost,
        make a new one.
      </p>
      {children}
      <label for="secret-once-value">{label}</label>
      <div class="secret-row">
        <input
          id="secret-once-value"
          class="secret-value"
          type="text"
          readOnly
          value={secret}
          spellcheck={false}
          autoComplete="off"
          onFocus={(e) => (e.currentTarget as HTMLInputElement).select()}
        />
        <button type="button" onClick={copy}>
          Copy
        </button>
      </div>
      <p class="small muted" role="status">
        {copied === "yes"
          ? "Copied to the clipboard."
          : copied === "failed"
            ? "Copying failed: select the text and copy it."
            : ""}
      </p>
      <button type="button" class="primary" onClick={onDone}>
        I have stored it
      </button>
    </section>
  );
}

/**
 * A destructive action behind a second, explicit click: the first button opens a question with
 * the consequences, which focus moves to; "Keep" closes it. Errors of the action show in place.
 */
export function ConfirmAction({
  label,
  question,
  confirmLabel,
  pending,
  error,
  onConfirm,
  children,
}: {
  label: string;
  question: string;
  confirmLabel: string;
  pending: boolean;
  error: unknown;
  onConfirm: () => void;
  children?: ComponentChildren;
}) {
  const [open, setOpen] = useState(false);
  const confirmRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (open) confirmRef.current?.focus();
  }, [open]);
  if (!open) {
    return (
      <button type="button" class="danger" onClick={() => setOpen(true)}>
        {label}
      </button>
    );
  }
  return (
    <div class="confirm">
      <p>
        <strong>{question}</strong>
      </p>
      {children}
      <div class="confirm-actions">
        <button type="button" class="danger-solid" ref={confirmRef} onClick={onConfirm} disabled={pending}>
          {pending ? "Working…" : confirmLabel}
        </button>
        <button type="button" onClick={() => setOpen(false)} disabled={pending}>
          Keep
        </button>
      </div>
      {error ? (
        <p class="notice error" role="alert">
          {errorMessage(error)}
        </p>
      ) : null}
    </div>
  );
}

/** Why a page shows nothing: the session's key lacks the scope the page's API needs. */
export function MissingScope({ scope, what }: { scope: string; what: string }) {
  return (
    <div class="notice" role="status">
      <p>
        The API key this session signed in with does not have the <code>{scope}</code> scope, so it cannot {what}.
      </p>
      <p>
        Sign out and sign in with a key that has it. Keys made by the operator have every scope unless narrowed; a key
        made through the API gets only the scopes asked for.
      </p>
    </div>
  );
}

/** The signed-in session (the shell renders pages only once it is loaded, so this reads the cache). */
export function useSession(): Session | null {
  const session = useQuery({ queryKey: ["session"], queryFn: fetchSession, staleTime: 60_000 });
  return session.data ?? null;
}

/** After an action that ended this session on the server: back to sign-in, nothing kept in memory. */
export function useEndSession(): () => void {
  const queryClient = useQueryClient();
  return () => {
    queryClient.setQueryData(["session"], null);
    queryClient.removeQueries({ predicate: (query) => query.queryKey[0] !== "session" });
  };
}
