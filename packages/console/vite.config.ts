/**
 * Builds the console into dist/, which the server serves at /console (server/src/console).
 * Assets get content hashes in their names so the server can mark them immutable; the base is
 * absolute so deep links such as /console/generations/task_… load the same files.
 */
import { defineConfig } from "vite";

export default defineConfig({
  base: "/console/",
  // Preact's automatic JSX runtime, without a plugin: Vite's own transform does JSX.
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    // The server's CSP forbids inline scripts and data: URLs are not needed: emit every asset as a file.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: "es2022",
    reportCompressedSize: true,
  },
});
