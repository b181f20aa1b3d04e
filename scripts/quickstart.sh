#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running, provisioned example VM:
# install, build, bring up Vmfile.example.ts, run a command in it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
echo "==> vmup (builds the debian-12 box on first use, about a minute)"
node bin/vmup.js --vmfile Vmfile.example.ts
node bin/vmssh.js --vmfile Vmfile.example.ts -c 'echo "hello from $(hostname)"; cat ~/hello.txt; cat /etc/motd; ls ~/data'
node bin/vmfile.js status --vmfile Vmfile.example.ts
echo "==> the example VM is running: node bin/vmssh.js --vmfile Vmfile.example.ts opens a shell; node bin/vmhalt.js --vmfile Vmfile.example.ts stops it"
