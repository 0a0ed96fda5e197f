#!/usr/bin/env node
// Thin launcher so the bin exists (and is executable) before the TypeScript build has run.
import "../dist/main.js";
