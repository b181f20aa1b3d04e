import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { UserError } from '../../../src/errors.js';
import { insecureKey, insecureTarget } from '../../../src/guest/first-login.js';
import { tempDir } from '../temp-dir.js';

describe('first login to a Vagrant box', () => {
  test('VMFILE_VAGRANT_KEY names the insecure key', async () => {
    const file = join(await tempDir(), 'vagrant');
    await writeFile(file, 'KEY');
    expect(await insecureKey('web', { VMFILE_VAGRANT_KEY: file })).toBe('KEY');
  });

  test("Debian's vagrant package provides it", async () => {
    expect(await insecureKey('web', {})).toContain('PRIVATE KEY');
  });

  test('the newest installed Vagrant gem is searched, after VMFILE_VAGRANT_KEY', async () => {
    const gems = await tempDir();
    for (const version of ['2.2.19', '2.3.4']) {
      await mkdir(join(gems, `vagrant-${version}`, 'keys'), { recursive: true });
      await writeFile(join(gems, `vagrant-${version}`, 'keys', 'vagrant'), version);
    }
    expect(await insecureKey('web', {}, [join(gems, 'absent'), gems])).toBe('2.3.4');
    expect(await insecureKey('web', { VMFILE_VAGRANT_KEY: join(gems, 'none') }, [gems])).toBe('2.3.4');
  });

  test('no key anywhere is a UserError naming the machine and how to get it', async () => {
    const empty = await tempDir();
    const attempt = insecureKey('web', { VMFILE_VAGRANT_KEY: join(empty, 'none') }, [empty]);
    await expect(attempt).rejects.toBeInstanceOf(UserError);
    await expect(attempt).rejects.toThrow(/machine "web": its box is a Vagrant box.*not on this host/);
  });

  test('the first-login target is the pinned one with the insecure key and no pinned host key', () => {
    const pinned = { label: 'machine "web"', host: '127.0.0.1', port: 2222, user: 'vagrant', privateKey: 'OWN', hostKey: Buffer.from('k') };
    expect(insecureTarget(pinned, 'INSECURE')).toEqual({ ...pinned, label: `machine "web" (first login, Vagrant's insecure key)`, privateKey: 'INSECURE', hostKey: 'unpinned' });
  });
});
