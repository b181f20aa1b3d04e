import { describe, expect, test } from 'vitest';
import type { ArchiveMember } from '../../../src/box/untrusted-archive.js';
import { classifyMember, projectPathProblem, studyManifestSchema } from '../../../src/study/format.js';

const file = (name: string, extra: Partial<ArchiveMember> = {}): ArchiveMember => ({ name, type: 'file', permissions: 'rw-r--r--', size: 10, ...extra });

describe('which members a study bundle may hold', () => {
  test.each([
    ['study.json', { kind: 'manifest', path: 'study.json' }],
    ['./study.json', { kind: 'manifest', path: 'study.json' }],
    ['packages.tar', { kind: 'packages', path: 'packages.tar' }],
    ['project/Vmfile.ts', { kind: 'project', path: 'Vmfile.ts' }],
    ['project/data/in put.csv', { kind: 'project', path: 'data/in put.csv' }],
    ['project/données/é.txt', { kind: 'project', path: 'données/é.txt' }],
  ])('%s is taken', (name, expected) => {
    expect(classifyMember(file(name))).toEqual(expected);
  });

  test.each([
    ['/etc/passwd', 'neither'],
    ['project/../outside', '".." part'],
    ['project/./a', '"." or ".." part'],
    ['project//a', 'empty'],
    ['project/.vmfile/machines/default/id_ed25519', 'private state'],
    ['project/sub/.vmfile/x', 'private state'],
    ['project/a\\nb', 'backslash'],
    ['project/a\u0007b', 'control character'],
    ['other/file', 'neither'],
  ])('%s is refused', (name, reason) => {
    const place = classifyMember(file(name));
    expect(place).toHaveProperty('problem');
    expect((place as { problem: string }).problem).toContain(reason);
  });

  test('links, devices and special bits are refused; the directories above project files are passed over', () => {
    expect(classifyMember(file('project/a', { type: 'symbolic link', target: '/etc/shadow' }))).toEqual({ problem: '"project/a" is a symbolic link, not a regular file' });
    expect(classifyMember(file('project/a', { type: 'hard link' }))).toHaveProperty('problem');
    expect(classifyMember(file('project/dev', { type: 'character device' }))).toHaveProperty('problem');
    expect(classifyMember(file('project/run.sh', { permissions: 'rwsr-xr-x' }))).toEqual({ problem: '"project/run.sh" has a setuid, setgid or sticky bit' });
    expect(classifyMember(file('project/', { type: 'directory' }))).toEqual({ skip: true });
    expect(classifyMember(file('./', { type: 'directory' }))).toEqual({ skip: true });
    expect(classifyMember(file('project/data/', { type: 'directory' }))).toEqual({ kind: 'project', path: 'data' });
    expect(classifyMember(file('study.json', { size: 5 * 1024 ** 2 }))).toHaveProperty('problem');
    expect(classifyMember(file(`project/${'a/'.repeat(520)}b`))).toEqual({ problem: expect.stringContaining('is longer than 1024 characters') as string });
  });

  test('study.json names its files by plain relative paths', () => {
    expect(projectPathProblem('results/a.csv')).toBeUndefined();
    const parsed = studyManifestSchema.safeParse({ format: 'vmfile-study', version: 1, vmfile: 'Vmfile.ts', files: ['Vmfile.ts', '../x', '.vmfile/key'], machines: ['default'], packages: 3 });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`)).toEqual([
      'files.1: "../x" is not a plain relative path (an empty, "." or ".." part)',
      'files.2: ".vmfile/key" is inside a .vmfile directory, a project\'s private state, which a bundle never carries',
    ]);
    expect(studyManifestSchema.safeParse({ format: 'vmfile-study', version: 2, vmfile: 'Vmfile.ts', files: [], machines: [], packages: 0 }).error?.issues[0]?.message).toContain('newer vmfile');
  });
});
