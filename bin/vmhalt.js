#!/usr/bin/env node
// Shortcut for: vmfile halt ...
import { startLoaderFor } from '../dist/project/loader-thread.js';

const argv = ['halt', ...process.argv.slice(2)];
startLoaderFor(argv);
const { main } = await import('../dist/cli/main.js');
await main(argv, import.meta.url);
