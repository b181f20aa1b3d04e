/**
 * Names and patterns that modules on vmssh's quick path (cli/quick-ssh.ts) need without
 * loading the schema library: kept here, re-exported where they belong.
 */

/** Vmfile.lock, next to the Vmfile (vmfile/lock.ts). */
export const LOCK_FILE_NAME = 'Vmfile.lock';

/** A machine's name in a Vmfile (and so on the command line): lower-case letters, digits and "-", starting with a letter. */
export const MACHINE_NAME_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;

/** A login user as box.json may name it: it reaches ssh_config and shell words. */
export const POSIX_USER_PATTERN = /^[a-z_][a-z0-9_-]{0,31}$/;
