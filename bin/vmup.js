#!/usr/bin/env node
// Shortcut for: vmfile up ...
import { startLoaderFor } from '../dist/project/loader-thread.js';

const argv = ['up', ...process.argv.slice(2)];
startLoaderFor(argv);
const { main } = await import('../dist/cli/main.js');
await main(argv, import.meta.url);
