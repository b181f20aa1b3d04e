/**
 * The real Ruby recorder on small Vagrantfiles in real directories: loops, ENV.fetch,
 * output of the file's own, failures; and init --from through the service.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigError, UserError } from '../../../src/errors.js';
import { recordVagrantfile } from '../../../src/vagrant/recorder.js';
import { init } from '../../../src/services/init.js';
import { parseVmfile } from '../../../src/vmfile/config.js';
import { tempDir } from '../temp-dir.js';

const LOOP = `
NODES = ENV.fetch("NODES", "2").to_i
MEMORY = ENV.fetch("VM_MEMORY") { "512" }
puts "this goes to stderr"; require "yaml" # rubygems reads GEM_* variables, which are not the file's
Vagrant.configure("2") do |config|
  config.vm.box = "debian/bookworm64"
  (1..NODES).each do |i|
    config.vm.define "node#{i}", primary: i == 1 do |node|
      node.vm.hostname = "node#{i}"
      node.vm.network "forwarded_port", guest: 80, host: 8080 + i
      node.vm.provider :libvirt do |lv, override|
        lv.memory = MEMORY
        override.vm.synced_folder ".", "/vagrant", type: "nfs"
      end
    end
  end
  config.vm.provision "shell" do |s|
    s.inline = "echo #{config.vm.box} > /etc/box"
  end
end
`;

async function vagrantfile(text: string): Promise<string> {
  const dir = await tempDir();
  await writeFile(join(dir, 'Vagrantfile'), text);
  return join(dir, 'Vagrantfile');
}

describe('recordVagrantfile', () => {
  test('records what a loop over machines made, with the environment it read', async () => {
    const record = await recordVagrantfile(await vagrantfile(LOOP), { env: { NODES: '3' } });
    const defines = record.configs[0]?.events.filter((e) => e.method === 'define') ?? [];
    expect(defines.map((d) => d.args)).toEqual([['node1', { primary: true }], ['node2', { primary: false }], ['node3', { primary: false }]]);
    expect(defines[2]?.blocks?.[0]?.find((e) => e.method === 'network')).toEqual({ target: ['vm'], method: 'network', args: ['forwarded_port', { guest: 80, host: 8083 }], at: 'Vagrantfile:10' });
    const provider = defines[0]?.blocks?.[0]?.find((e) => e.method === 'provider');
    expect(provider?.args).toEqual(['libvirt']);
    expect(provider?.blocks).toEqual([
      [{ target: [], method: 'memory=', args: ['512'], at: 'Vagrantfile:12' }],
      [{ target: ['override', 'vm'], method: 'synced_folder', args: ['.', '/vagrant', { type: 'nfs' }], at: 'Vagrantfile:13' }],
    ]);
    expect(record.configs[0]?.events.at(-1)?.blocks?.[0]).toEqual([{ target: [], method: 'inline=', args: ['echo debian/bookworm64 > /etc/box'], at: 'Vagrantfile:18' }]);
    expect(record.env).toEqual([
      { name: 'NODES', value: '3', used: '3', at: 'Vagrantfile:2' },
      { name: 'VM_MEMORY', value: null, used: '512', at: 'Vagrantfile:3' },
    ]);
  });

  test('a Vagrantfile that raises is a configuration error naming the file and line', async () => {
    const file = await vagrantfile('Vagrant.configure("2") do |config|\n  config.vm.box = ENV.fetch("REQUIRED_BOX")\nend\n');
    const error = await recordVagrantfile(file, { env: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).exitCode).toBe(78);
    expect((error as ConfigError).message).toContain(`${file}: Ruby stopped while running it:`);
    expect((error as ConfigError).message).toMatch(/Vagrantfile:2: KeyError: key not found: "REQUIRED_BOX"/);
  });

  test('one that never ends is stopped at the time limit', async () => {
    const error = await recordVagrantfile(await vagrantfile('sleep 60\n'), { timeoutMs: 1500 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain('did not finish within 1.5 s');
  });

  test('one whose values nest deeper than any real one is refused as such', async () => {
    const error = await recordVagrantfile(await vagrantfile('a = []\n70.times { a = [a] }\nVagrant.configure("2") { |c| c.vm.box = a }\n')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain('nests values more than 64 levels deep');
  });

  test('one that writes to the recorder\'s output or exits early gives no record, said as such', async () => {
    const error = await recordVagrantfile(await vagrantfile('$stdout.sync = true\nIO.new(1).write("{}")\nexit!(0)\n')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
  });
});

describe('init --from', () => {
  test('writes a Vmfile vmfile accepts, with the summary, and never overwrites one', async () => {
    const file = await vagrantfile(LOOP);
    const dir = join(file, '..');
    const result = await init({ dir, from: 'Vagrantfile', env: { NODES: '2', VAGRANT_SERVER_URL: 'http://127.0.0.1:9/' } });
    expect(result.conversion?.machines).toEqual(['node1', 'node2']);
    expect(result.conversion?.summary).toContain('override.vm.synced_folder');
    const text = await readFile(join(dir, 'Vmfile.ts'), 'utf8');
    expect(text).toContain("url: 'http://127.0.0.1:9/debian/bookworm64'");
    expect(text).toContain('//   VAGRANT_SERVER_URL="http://127.0.0.1:9/"');
    expect(await readFile(join(dir, '.gitignore'), 'utf8')).toContain('.vmfile/');
    const body = text.replace("import { defineVm } from 'vmfile';", '').replace('export default defineVm(', 'return (');
    expect(parseVmfile(new Function(body)(), join(dir, 'Vmfile.ts'), dir).machines.map((m) => m.memory)).toEqual([512 * 1024 ** 2, 512 * 1024 ** 2]);
    const again = await init({ dir, from: 'Vagrantfile', env: {} }).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(UserError);
    expect(await readFile(join(dir, 'Vmfile.ts'), 'utf8')).toBe(text);
  });

  test('with a Vmfile there already, the Vagrantfile is not even run', async () => {
    const file = await vagrantfile('File.write("ran", "yes")\nVagrant.configure("2") { |c| c.vm.box = "x" }\n');
    const dir = join(file, '..');
    await writeFile(join(dir, 'Vmfile.ts'), 'mine');
    await expect(init({ dir, from: 'Vagrantfile', env: {} })).rejects.toThrow(UserError);
    await expect(readFile(join(dir, 'ran'))).rejects.toThrow(/ENOENT/);
    expect(await readFile(join(dir, 'Vmfile.ts'), 'utf8')).toBe('mine');
  });

  test('a --from that is missing is a configuration error', async () => {
    const dir = await tempDir();
    await expect(init({ dir, from: 'nope/Vagrantfile', env: {} })).rejects.toThrow(ConfigError);
  });
});
