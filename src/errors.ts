/**
 * Every failure vmfile reports is one of these. Each carries the process exit code
 * and, where there is one, a hint saying what to do next. The single top-level
 * handler (src/cli/main.ts) prints them; nothing else calls process.exit.
 */
export class VmfileError extends Error {
  readonly exitCode: number = 1;
  readonly hint: string | undefined;

  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }
}

/** The user asked for something that cannot be done in the current state. */
export class UserError extends VmfileError {}

/** The Vmfile (or another configuration file) is invalid. EX_CONFIG. */
export class ConfigError extends VmfileError {
  override readonly exitCode = 78;
}

/** A host program (qemu-img, mmdebstrap, ssh-keygen...) failed or is missing. */
export class ExternalCommandError extends VmfileError {
  override readonly exitCode = 1;
  constructor(
    message: string,
    readonly command: string,
    readonly args: readonly string[],
    readonly stderr: string,
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

/** Something inside the guest failed: SSH never came, a provisioning step failed. */
export class GuestError extends VmfileError {
  override readonly exitCode: number;
  constructor(message: string, options: { hint?: string; cause?: unknown; exitCode?: number } = {}) {
    super(message, options);
    this.exitCode = options.exitCode ?? 1;
  }
}

/** Another vmfile process holds the machine's lock. EX_TEMPFAIL. */
export class BusyError extends VmfileError {
  override readonly exitCode = 75;
}

/** A bug in vmfile itself. EX_SOFTWARE. */
export class InternalError extends VmfileError {
  override readonly exitCode = 70;
}

/** Renders any thrown value the way the CLI prints it, and picks the exit code. */
export function describeFailure(error: unknown, debug: boolean): { text: string; exitCode: number } {
  if (error instanceof VmfileError) {
    let text = `error: ${error.message}`;
    text += programSaid(error, 15, '  | ');
    if (error.hint !== undefined) text += `\nhint: ${error.hint}`;
    if (debug && error.stack !== undefined) text += `\n${error.stack}`;
    return { text, exitCode: error.exitCode };
  }
  const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return {
    text: `error: internal error in vmfile (this is a bug): ${error instanceof Error ? error.message : String(error)}${debug ? `\n${stack}` : '\nhint: run again with --debug for the stack trace'}`,
    exitCode: 70,
  };
}

export function lastLines(text: string, count: number): string {
  return text.trimEnd().split('\n').slice(-count).join('\n');
}

/**
 * The last `count` lines a failed program printed, each after `prefix`, on lines of their
 * own under its error; empty for any other error, or when the message already holds them.
 */
export function programSaid(error: unknown, count: number, prefix: string): string {
  if (!(error instanceof ExternalCommandError)) return '';
  const said = error.stderr.trim();
  if (said === '' || error.message.includes(said)) return '';
  return `\n${lastLines(error.stderr, count)
    .split('\n')
    .map((line) => `${prefix}${line}`)
    .join('\n')}`;
}
