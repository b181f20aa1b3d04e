#!/usr/bin/env node
import { startLoaderFor } from '../dist/project/loader-thread.js';

const argv = process.argv.slice(2);
// The Vmfile's loading thread starts on the other core while oclif loads.
startLoaderFor(argv);
const { main } = await import('../dist/cli/main.js');
await main(argv, import.meta.url);
