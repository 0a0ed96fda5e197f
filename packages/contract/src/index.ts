export * from "./catalog.js";
export * from "./errors.js";
export * from "./file-schemas.js";
export * from "./openapi.js";
export * from "./pricing.js";
export * from "./schemas.js";
export * from "./validate.js";
export * from "./webhook-schemas.js";
