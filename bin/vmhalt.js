#!/usr/bin/env node
// Shortcut for: vmfile halt ...
import { main } from '../dist/cli/main.js';

await main(['halt', ...process.argv.slice(2)], import.meta.url);
