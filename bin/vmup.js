#!/usr/bin/env node
// Shortcut for: vmfile up ...
import { main } from '../dist/cli/main.js';

await main(['up', ...process.argv.slice(2)], import.meta.url);
