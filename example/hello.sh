#!/bin/sh
# Runs as the login user on every vmup of Vmfile.example.ts.
set -eu
[ "$1" = --greeting ] && echo "$2 ($(hostname), $(nproc) CPUs, LANG=$LANG)" | tee "$HOME/hello.txt"
