/**
 * The first-boot requirement that grows the root file system, against a fake sshd: what
 * it runs in the guest, the phase it shows, and that whatever goes wrong ends in a notice
 * naming the machine, never in a failed start.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import type { GuestStart } from '../../../src/guest/guest-start.js';
import { growRootFileSystem } from '../../../src/guest/grow-root.js';
import { ROOT_DISK_PROBE, ROOT_DISK_PROBE_AS_ROOT } from '../../../src/guest/root-disk.js';
import { SshSession } from '../../../src/ssh/client.js';
import { generateKeyPair, publicKeyBlob, readPublicKey } from '../../../src/ssh/keys.js';
import type { Reporter } from '../../../src/ui/reporter.js';
import { tempDir } from '../temp-dir.js';
import { FakeGuest, type GuestHandler } from './fake-guest.js';
import { guest, probeOutput } from './root-disk-guests.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const open: { guest: FakeGuest; session: SshSession }[] = [];

afterEach(async () => {
  for (const { guest: g, session } of open.splice(0)) {
    session.close();
    await g.close();
  }
});

async function run(handler: GuestHandler): Promise<{ commands: string[]; phases: string[]; notices: string[] }> {
  const dir = await tempDir();
  const [client, host] = [join(dir, 'id'), join(dir, 'host')];
  await generateKeyPair(client, 'test');
  await generateKeyPair(host, 'test host');
  const fake = await FakeGuest.start(host, handler);
  await fake.allow('machine', `${client}.pub`);
  const session = await SshSession.connect({ label: 'machine "web"', host: '127.0.0.1', port: fake.port, user: 'vm', privateKey: await readFile(client, 'utf8'), hostKey: publicKeyBlob(await readPublicKey(`${host}.pub`)) });
  open.push({ guest: fake, session });
  const phases: string[] = [];
  const notices: string[] = [];
  const reporter: Reporter = {
    phase: (machine, title) => ({ progress: () => undefined, measure: () => undefined, done: (detail) => void phases.push(`${machine}: ${title}: ${detail ?? ''}`), fail: () => void phases.push(`${machine}: ${title}: failed`) }),
    info: () => undefined,
    notice: (text) => void notices.push(text),
    output: () => undefined,
  };
  await growRootFileSystem({ machine: { name: 'web' }, reporter, session } as unknown as GuestStart);
  const named = (command: string) => (command === ROOT_DISK_PROBE ? 'probe' : command === ROOT_DISK_PROBE_AS_ROOT ? 'probe as root' : command);
  return { commands: fake.commands.map((c) => named(c.command)), phases, notices };
}

const isProbe = (command: string) => command === ROOT_DISK_PROBE || command === ROOT_DISK_PROBE_AS_ROOT;
const short = probeOutput(guest({ table: 'gpt' }));
const grown = probeOutput(guest({ table: 'gpt', rootSectors: (6 * GiB - 67 * MiB) / 512, fsSize: Math.round(5.8 * GiB) }));

describe('growRootFileSystem', () => {
  test('a root that fills its disk: one probe as the login user, nothing run, a phase that says so', async () => {
    const result = await run(() => ({ code: 0, stdout: grown }));
    expect(result.commands).toEqual(['probe']);
    expect(result.phases).toEqual(['web: Checking that the root file system fills the disk: it does: 5.8GiB on a 6GiB disk']);
    expect(result.notices).toEqual([]);
  });

  test('a short root: grown, probed again, and the phase says from what to what', async () => {
    let grew = false;
    const result = await run((c) => {
      if (isProbe(c.command)) return { code: 0, stdout: grew ? grown : short };
      grew = true;
      return { code: 0 };
    });
    expect(result.commands).toHaveLength(4);
    expect(result.commands.filter((command) => command.startsWith('probe'))).toEqual(['probe', 'probe as root', 'probe']);
    expect(result.commands[2]).toMatch(/^sudo -n sh -c '.*sfdisk --force --no-reread -N 3 \/dev\/vda/s);
    expect(result.phases).toEqual(['web: Checking that the root file system fills the disk: grew it from 1.8GiB to 5.8GiB on a 6GiB disk (GPT partition /dev/vda3 by sfdisk, ext4 by resize2fs)']);
    expect(result.notices).toEqual([]);
  });

  test('a growth that fails is a notice with the sizes seen, not a failed start', async () => {
    const result = await run((c) => (isProbe(c.command) ? { code: 0, stdout: short } : { code: 1 }));
    expect(result.phases).toEqual(['web: Checking that the root file system fills the disk: growing it failed']);
    expect(result.notices).toEqual([
      'machine "web": growing the root file system (1.8GiB on a 6GiB disk; GPT partition /dev/vda3 by sfdisk, ext4 by resize2fs) failed with exit 1. It is now 1.8GiB on a 6GiB disk. Try the same by hand over vmssh, or give the box cloud-init\'s growpart',
    ]);
  });

  test('a root vmfile does not grow (not the last partition): the reason and what to do, nothing run', async () => {
    const result = await run(() => ({ code: 0, stdout: probeOutput(guest({ table: 'dos', after: true })) }));
    expect(result.commands).toEqual(['probe', 'probe as root']);
    expect(result.notices).toEqual([
      'machine "web": the root file system is 1.9GiB on a 6GiB disk, and vmfile could not grow it: the root partition /dev/vda1 is followed by /dev/vda2, so it cannot grow into the disk\'s new space. Try: move or remove the partitions after it, then grow the root partition and its file system',
    ]);
  });

  test('a guest whose probe fails (no sudo, say): a notice, and the start goes on', async () => {
    const result = await run(() => ({ code: 1 }));
    expect(result.phases).toEqual(['web: Checking that the root file system fills the disk: could not tell']);
    expect(result.notices).toEqual([
      'machine "web": vmfile could not see how the root file system lies on its disk (the probe exited 1). If it is smaller than the disk, grow it with the guest\'s own tools',
    ]);
  });
});
