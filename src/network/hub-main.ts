/**
 * Entry point of the hub daemon: `node dist/network/hub-main.js SOCKET`. ensureHub
 * starts it detached; it stops by itself once no machine has been connected for a
 * minute, or on SIGTERM/SIGINT. Exit code 0 when it stopped cleanly.
 */
import { startHub } from './hub.js';

async function main(argv: readonly string[]): Promise<number> {
  const socketPath = argv[0];
  if (socketPath === undefined || argv.length !== 1) {
    process.stderr.write('usage: hub-main.js SOCKET\n');
    return 64;
  }
  const hub = await startHub(socketPath);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void hub.close());
  await hub.done;
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`vmfile hub: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
