import type { ModelEntry } from "./catalog.js";

/**
 * Credits to reserve for a generation. FIXED models cost base_credits whatever the params;
 * the normalized params are taken so that metered models can be priced here later.
 */
export function priceGeneration(model: ModelEntry, _params: Record<string, string>): number {
  switch (model.billing_type) {
    case "FIXED":
      return model.base_credits;
    default:
      throw new Error(`billing type ${model.billing_type} is not supported for generations`);
  }
}
