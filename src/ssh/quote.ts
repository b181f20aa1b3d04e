/**
 * POSIX shell quoting. SSH runs a remote command through the login shell, so argv
 * arrays are turned into one string here and nowhere else: every element becomes a
 * single-quoted word, so no Vmfile value is ever interpreted by the shell.
 */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_./:=@%+-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

export function shellCommand(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}
