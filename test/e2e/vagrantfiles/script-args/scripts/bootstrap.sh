#!/bin/sh
# Records what it was given, as the unprivileged login user.
set -eu
{
  echo "args: $*"
  echo "user: $(id -un)"
  echo "stage: ${APP_STAGE}"
  echo "workers: ${APP_WORKERS}"
} > "$HOME/bootstrap.out"
