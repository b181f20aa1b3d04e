#!/usr/bin/env node
// Shortcut for: vmfile up ...
import { runCli } from '../dist/cli/entry.js';

await runCli(['up', ...process.argv.slice(2)], import.meta.url);
