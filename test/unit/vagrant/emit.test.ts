/**
 * The Vmfile text: the header names the environment read, comments stand where gaps
 * were, and any text from the Vagrantfile (quotes, backticks, line breaks, `${`) comes
 * out as the same value. The body is evaluated here to check exactly that.
 */
import { describe, expect, test } from 'vitest';
import { vmfileSource } from '../../../src/vagrant/emit.js';
import { convertRecord } from '../../../src/vagrant/convert.js';
import type { RecordedCall, VagrantRecord } from '../../../src/vagrant/record.js';
import { commentLines, plain } from '../../../src/vagrant/source.js';

const options = { vagrantfile: 'Vagrantfile', fromDir: '/p', toDir: '/p', boxServer: 'https://vagrantcloud.com' };
const at = (n: number) => `Vagrantfile:${n}`;

/** What defineVm receives when the emitted source runs. */
function evaluate(source: string): unknown {
  const body = source.replace("import { defineVm } from 'vmfile';", '').replace('export default defineVm(', 'return (');
  return new Function(body)() as unknown;
}

describe('vmfileSource', () => {
  const tricky = "it's `quoted` \\ and ${not} interpolated\n*/ second line\u2028";
  const events: RecordedCall[] = [
    { target: ['vm'], method: 'box=', args: ['debian-12'], at: at(1) },
    { target: ['vm'], method: 'provision', args: ['shell', { inline: tricky, env: { MSG: "a'b\nc" } }], at: at(2) },
    { target: ['vm'], method: 'provider', args: ['virtualbox'], at: at(3), blocks: [[{ target: [], method: 'customize', args: [['modifyvm', 'id', '--name', 'x\ny']], at: at(4) }]] },
  ];
  const record: VagrantRecord = {
    recorder: 1,
    configs: [{ version: '2', events }],
    env: [
      { name: 'NODES', value: '3', used: '3', at: at(1) },
      { name: 'MEMORY', value: null, used: '1024', at: at(2) },
      { name: 'NODES', value: '3', used: '3', at: at(5) },
    ],
    plugins: ['vagrant-hostmanager'],
  };
  const converted = convertRecord(record, options);
  const source = vmfileSource(converted, record.env, 'Vagrantfile');

  test('the source evaluates to the converted data, whatever the strings hold', () => {
    expect(evaluate(source)).toEqual(plain(converted.root));
    expect(evaluate(source)).toMatchObject({ provision: [{ shell: tricky, env: { MSG: "a'b\nc" } }] });
  });

  test('the header lists each variable read once, with its value or the default used, and file-level notes', () => {
    const header = source.slice(0, source.indexOf('import'));
    expect(header).toContain('//   NODES="3" (Vagrantfile:1)\n');
    expect(header).toContain('//   MEMORY not set, so "1024" (Vagrantfile:2)\n');
    expect(header.match(/NODES/g)).toHaveLength(1);
    expect(header).toContain('Vagrant.has_plugin?("vagrant-hostmanager") was answered false');
    expect(header).toContain('// 1 setting did not convert: see the NOT CONVERTED comments.');
    expect(source).not.toContain('process.env');
  });

  test('a gap is a comment at its place; a line break in it cannot end the comment', () => {
    expect(source).toContain('  // NOT CONVERTED (Vagrantfile:4): vb.customize ["modifyvm","id","--name","x\\ny"]');
    expect(commentLines('a\nb\r\nc\u2028d', '  ')).toEqual(['  // a', '  // b', '  // c', '  // d']);
  });
});
