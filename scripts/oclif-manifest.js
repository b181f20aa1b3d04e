#!/usr/bin/env node
// Writes oclif.manifest.json after the build: every command's id, summary, flags and
// file, read once from dist/commands. With it, oclif imports only the file of the command
// that runs, instead of all of them on every start (docs/design.md, "Start-up").
import { rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Config } from '@oclif/core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// oclif reads an existing manifest instead of the commands (the root plugin takes no ignoreManifest): remove it first.
await rm(join(root, 'oclif.manifest.json'), { force: true });
const config = await Config.load({ root });
const plugin = config.plugins.get(config.pjson.name);
if (plugin === undefined) throw new Error(`no plugin ${config.pjson.name} in ${root}`);
const manifest = plugin.manifest;
const ids = Object.keys(manifest.commands);
if (ids.length === 0) throw new Error('no commands found under dist/commands: build first');
for (const id of ids) {
  const command = manifest.commands[id];
  if (command.relativePath === undefined || command.isESM === undefined) throw new Error(`command ${id}: oclif recorded no file for it`);
}
await writeFile(join(root, 'oclif.manifest.json'), `${JSON.stringify(manifest, null, 1)}\n`);
console.log(`oclif.manifest.json: ${ids.length} commands`);
