/**
 * One model param as a form control, from its catalog descriptor: a checkbox for a false/true
 * select, a group of radio buttons for a short select, a drop-down for a long one, and number or
 * text inputs for the other types. Labels are the catalog's descriptions.
 */
import type { ModelParam } from "@framegate/sdk";
import { isToggle, type ParamValue } from "../../playground.js";

/** Up to this many options are radio buttons (all visible at once); more make a drop-down. */
const MAX_RADIOS = 5;

interface Props {
  param: ModelParam;
  value: ParamValue | undefined;
  onChange: (value: ParamValue) => void;
}

export function ParamField({ param, value, onChange }: Props) {
  const id = `param-${param.key}`;
  const label = param.description || param.key;
  const options = param.options ?? [];

  if (isToggle(param)) {
    return (
      <div class="param param-toggle">
        <input
          id={id}
          type="checkbox"
          checked={value === "true"}
          onChange={(event) => onChange(event.currentTarget.checked ? "true" : "false")}
        />
        <label for={id}>{label}</label>
      </div>
    );
  }

  if (param.type === "select" && options.length <= MAX_RADIOS) {
    return (
      <fieldset class="param param-choices">
        <legend>{label}</legend>
        {options.map((option) => (
          <label key={option} class="choice">
            <input
              type="radio"
              name={id}
              value={option}
              checked={String(value) === option}
              onChange={() => onChange(option)}
            />
            {optionLabel(param.key, option)}
          </label>
        ))}
      </fieldset>
    );
  }

  if (param.type === "select") {
    return (
      <div class="param">
        <label for={id}>{label}</label>
        <select id={id} value={String(value ?? "")} onChange={(event) => onChange(event.currentTarget.value)}>
          {param.required ? null : <option value="">Model default</option>}
          {options.map((option) => (
            <option key={option} value={option}>
              {optionLabel(param.key, option)}
            </option>
          ))}
        </select>
      </div>
    );
  }

  return (
    <div class="param">
      <label for={id}>{label}</label>
      <input
        id={id}
        type={param.type === "number" ? "number" : "text"}
        value={value ?? ""}
        min={param.min ?? undefined}
        max={param.max ?? undefined}
        step={param.step ?? undefined}
        required={param.required}
        onInput={(event) => {
          const raw = event.currentTarget.value;
          onChange(param.type === "number" && raw !== "" ? Number(raw) : raw);
        }}
      />
    </div>
  );
}

/** Durations read as seconds; other options as the API spells them. */
function optionLabel(key: string, option: string): string {
  return key === "duration" && /^\d+$/.test(option) ? `${option} s` : option;
}
