#!/usr/bin/env node
// Shortcut for: vmfile ssh ...
import { main } from '../dist/cli/main.js';

await main(['ssh', ...process.argv.slice(2)], import.meta.url);
