#!/usr/bin/env node
// Shortcut for: vmfile ssh ... (the common forms go straight to the machine: dist/cli/quick-ssh.js)
import { quickSsh } from '../dist/cli/quick-ssh.js';

const argv = process.argv.slice(2);
const code = await quickSsh(argv);
if (code === undefined) {
  const { runCli } = await import('../dist/cli/entry.js');
  await runCli(['ssh', ...argv], import.meta.url);
} else {
  process.exitCode = code;
}
