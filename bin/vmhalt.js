#!/usr/bin/env node
// Shortcut for: vmfile halt ...
import { runCli } from '../dist/cli/entry.js';

await runCli(['halt', ...process.argv.slice(2)], import.meta.url);
