/**
 * Registered for every test file (vitest.config.ts setupFiles): a test in which a test server
 * answered something the OpenAPI document does not describe fails, with what was wrong.
 */
import { appendFileSync } from "node:fs";
import { afterAll, afterEach } from "vitest";
import { takeConformanceViolations } from "./openapi-conformance.js";

/** With CONFORMANCE_REPORT=FILE, violations are appended to FILE instead (a survey of the whole suite). */
const reportFile = process.env.CONFORMANCE_REPORT;

function failOnViolations(): void {
  const seen = takeConformanceViolations();
  if (seen.length === 0) return;
  const unique = [...new Set(seen)];
  if (reportFile) {
    appendFileSync(reportFile, `${unique.join("\n")}\n`);
    return;
  }
  throw new Error(
    `The server answered ${seen.length} response(s) the OpenAPI document does not describe:\n- ${unique.join("\n- ")}`,
  );
}

afterEach(failOnViolations);
// A response that finishes after its test's afterEach (a stream closed late) is caught here.
afterAll(failOnViolations);
