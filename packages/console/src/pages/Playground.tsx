/**
 * The playground: write a prompt, set the model's params, optionally add a reference image, see
 * the price against the balance, create, and watch the task finish live. The form is built from
 * the catalog (GET /api/v1/models), so its limits, params, defaults and price are the server's;
 * everything the catalog lets the browser check is checked before anything is sent.
 */
import { type Model, type Task, ValidationError } from "@framegate/sdk";
import { useMutation, useQuery, useQueryClient } from "@tanstack/preact-query";
import type { JSX } from "preact";
import { useRef, useState } from "preact/hooks";
import { client, errorMessage } from "../api.js";
import { formatCredits } from "../format.js";
import {
  checkPrompt,
  defaultParams,
  imageLimit,
  type ParamValue,
  type PromptCheck,
  priceOf,
  requestParams,
} from "../playground.js";
import { Empty, ErrorState, Loading } from "../ui.js";
import { LiveTask } from "./playground/LiveTask.js";
import { ParamField } from "./playground/ParamField.js";
import { type Reference, ReferenceImage } from "./playground/ReferenceImage.js";
import "./Playground.css";

export function Playground() {
  const models = useQuery({
    queryKey: ["models"],
    queryFn: () => client.models.list(),
    staleTime: 5 * 60_000,
  });

  let body: JSX.Element;
  if (models.isPending) body = <Loading label="Loading the models…" />;
  else if (models.isError) body = <ErrorState error={models.error} onRetry={() => models.refetch()} />;
  else {
    const usable = models.data.data.filter((m) => m.api_status === "available" && m.runtime === "async_task");
    body = usable.length ? (
      <PlaygroundForm models={usable} />
    ) : (
      <Empty>No model can be used through the API on this server.</Empty>
    );
  }
  return (
    <>
      <h1>Playground</h1>
      {body}
    </>
  );
}

/** A fresh Idempotency-Key; getRandomValues works outside secure contexts, where randomUUID does not. */
function newIdempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `console-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

function PlaygroundForm({ models }: { models: Model[] }) {
  const queryClient = useQueryClient();
  // biome-ignore lint/style/noNonNullAssertion: the caller passes at least one model
  const [modelId, setModelId] = useState(models[0]!.id);
  const model = models.find((m) => m.id === modelId) ?? (models[0] as Model);
  const [prompt, setPrompt] = useState("");
  const [values, setValues] = useState<Record<string, ParamValue>>(() => defaultParams(model));
  const [reference, setReference] = useState<Reference>({ state: "none" });
  const [created, setCreated] = useState<Task | null>(null);
  const [attempted, setAttempted] = useState(false);
  /**
   * One key per content of the form: a double click, or a retry after a lost answer, sends the same
   * key and the server answers with the one task it made; any edit, or a create that went through,
   * makes the next create a new one.
   */
  const idempotencyKey = useRef<string | null>(null);
  const submitting = useRef(false);

  const credits = useQuery({ queryKey: ["credits"], queryFn: () => client.credits.retrieve() });
  const create = useMutation({
    mutationFn: (key: string) =>
      client.generations.create(
        {
          model: model.id,
          prompt,
          params: requestParams(values, reference.state === "ready" ? referenceItem(reference) : undefined),
        },
        { idempotencyKey: key },
      ),
    onSuccess: (task) => {
      idempotencyKey.current = null;
      setCreated(task);
      void queryClient.invalidateQueries({ queryKey: ["credits"] });
      void queryClient.invalidateQueries({ queryKey: ["generations"] });
    },
    onSettled: () => {
      submitting.current = false;
    },
  });

  const edited = () => {
    idempotencyKey.current = null;
    create.reset();
  };

  const promptCheck = checkPrompt(prompt, model.max_prompt_length);
  const limit = imageLimit(model);
  const price = priceOf(model, values);
  const balance = credits.data?.current_credits;
  const referenceProblem = referenceBlocks(reference);
  // An empty prompt is pointed out once a create was tried; a prompt over the limit at once.
  const promptProblem = attempted || promptCheck.length > promptCheck.max ? promptCheck.problem : undefined;

  const submit = (event: Event) => {
    event.preventDefault();
    setAttempted(true);
    if (promptCheck.problem || referenceProblem || submitting.current) return;
    submitting.current = true;
    idempotencyKey.current ??= newIdempotencyKey();
    create.mutate(idempotencyKey.current);
  };

  return (
    <div class="playground">
      <form class="card playground-form" onSubmit={submit} noValidate aria-labelledby="playground-form-heading">
        <h2 id="playground-form-heading">New generation</h2>
        {models.length > 1 ? (
          <div class="param">
            <label for="model">Model</label>
            <select
              id="model"
              value={model.id}
              onChange={(event) => {
                const next = models.find((m) => m.id === event.currentTarget.value);
                if (!next) return;
                setModelId(next.id);
                setValues(defaultParams(next));
                setReference({ state: "none" });
                edited();
              }}
            >
              {models.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.display_name}
                </option>
              ))}
            </select>
          </div>
        ) : (
          <p class="muted">
            Model: <strong>{model.display_name}</strong> <code>{model.id}</code>
          </p>
        )}

        <PromptField
          value={prompt}
          check={promptCheck}
          problem={promptProblem}
          onInput={(next) => {
            setPrompt(next);
            edited();
          }}
        />

        {model.params.length ? (
          <div class="params">
            {model.params.map((param) => (
              <ParamField
                key={`${model.id}:${param.key}`}
                param={param}
                value={values[param.key]}
                onChange={(value) => {
                  setValues((old) => ({ ...old, [param.key]: value }));
                  edited();
                }}
              />
            ))}
          </div>
        ) : null}

        {limit ? (
          <ReferenceImage
            key={model.id}
            modelId={model.id}
            limit={limit}
            value={reference}
            onChange={(next) => {
              setReference(next);
              edited();
            }}
          />
        ) : null}

        <div class="cost" aria-live="polite">
          <p>
            Price: <strong>{price === undefined ? "set by the server at creation" : formatCredits(price)}</strong>
            {" · "}
            Balance:{" "}
            <strong class="playground-balance">
              {balance === undefined ? (credits.isError ? "unavailable" : "loading…") : formatCredits(balance)}
            </strong>
          </p>
          {price !== undefined && balance !== undefined && balance < price ? (
            <p class="notice error">
              The balance is {formatCredits(price - balance)} short of the price: the create will be refused until
              credits are added.
            </p>
          ) : null}
        </div>

        <div class="submit-row">
          <button
            type="submit"
            class="primary"
            disabled={create.isPending || Boolean(promptProblem ?? referenceProblem)}
          >
            {create.isPending ? "Creating…" : "Create generation"}
          </button>
          {referenceProblem && !create.isPending ? <span class="muted small">{referenceProblem}</span> : null}
        </div>
        {create.isError ? <CreateError error={create.error} /> : null}
      </form>

      {created ? <LiveTask key={created.id} created={created} /> : null}
    </div>
  );
}

/** The prompt with its live counter (code points, as the server counts) and what is wrong with it. */
function PromptField(props: {
  value: string;
  check: PromptCheck;
  problem: string | undefined;
  onInput: (value: string) => void;
}) {
  const { check, problem } = props;
  const over = check.length > check.max;
  return (
    <div class="prompt-field">
      <label for="prompt">Prompt</label>
      <textarea
        id="prompt"
        rows={5}
        value={props.value}
        aria-describedby="prompt-counter prompt-problem"
        aria-invalid={problem ? "true" : undefined}
        onInput={(event) => props.onInput(event.currentTarget.value)}
      />
      <p id="prompt-counter" class={over ? "counter over" : "counter"}>
        {check.length} / {check.max} characters
      </p>
      <p id="prompt-problem" class="field-problem" aria-live="polite">
        {problem ?? ""}
      </p>
    </div>
  );
}

/** Why the reference keeps the create back, if it does. */
function referenceBlocks(reference: Reference): string | undefined {
  switch (reference.state) {
    case "checking":
      return "Checking the reference image…";
    case "uploading":
      return "Waiting for the reference image's upload…";
    case "invalid":
    case "failed":
      return "Remove the reference image or choose another.";
    default:
      return undefined;
  }
}

function referenceItem(reference: Extract<Reference, { state: "ready" }>) {
  return { url: reference.file.url, mimeType: reference.file.mime_type, name: reference.file.name };
}

/** The API's refusal, plainly: its message, and for a validation error each field's issue. */
function CreateError({ error }: { error: unknown }) {
  const details = error instanceof ValidationError ? (error.details ?? []) : [];
  return (
    <div class="notice error" role="alert">
      <p>The generation was not created: {errorMessage(error)}</p>
      {details.length ? (
        <ul>
          {details.map((d) => (
            <li key={`${d.path}:${d.issue}`}>
              <code>{d.path}</code> {d.issue}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
