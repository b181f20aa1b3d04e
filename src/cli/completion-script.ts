/**
 * Shell completion for vmfile, vmup, vmssh and vmhalt, as one self-contained script that
 * `vmfile completion bash|zsh` prints. It is meant to be evaluated by the shell's start-up
 * file (`eval "$(vmfile completion bash)"`), so it is made from the commands of the vmfile
 * that runs, each time a shell starts: nothing to build first, nothing cached to go stale
 * after an upgrade. Completing runs no vmfile: commands, topics ("snapshot save") and flags
 * come from tables in the script; after a whole command the shell completes file names.
 * zsh runs the same function through its bash compatibility (bashcompinit). Pure.
 */

export interface CompletionCommand {
  /** "up", "snapshot save". */
  id: string;
  /** Its flags as typed: "--json", "-f". */
  flags: string[];
}

/** The shorthand programs and the command each one is. */
export const SHORTHANDS: Record<string, string> = { vmup: 'up', vmssh: 'ssh', vmhalt: 'halt' };

const SAFE_WORD = /^[a-z0-9][a-z0-9 :-]*$/i;
const SAFE_FLAG = /^--?[a-z0-9][a-z0-9-]*$/i;

export function completionScript(shell: 'bash' | 'zsh', commands: CompletionCommand[]): string {
  // What is typed so far → the words that may come next ("vmfile" is the root).
  const next = new Map<string, Set<string>>([['vmfile', new Set()]]);
  const flags = new Map<string, string[]>();
  for (const command of commands) {
    if (!SAFE_WORD.test(command.id) || !command.flags.every((flag) => SAFE_FLAG.test(flag))) throw new Error(`command ${JSON.stringify(command.id)} cannot be completed safely`);
    const words = command.id.split(' ');
    words.forEach((word, index) => {
      const path = ['vmfile', ...words.slice(0, index)].join(' ');
      const set = next.get(path) ?? new Set<string>();
      set.add(word);
      next.set(path, set);
    });
    flags.set(['vmfile', ...words].join(' '), [...command.flags].sort());
  }
  const table = (name: string, entries: [string, string[]][]) =>
    [`  declare -gA ${name}=(`, ...entries.map(([key, words]) => `    ['${key}']='${words.join(' ')}'`), '  )'].join('\n');
  const lines = [
    `# vmfile shell completion for vmfile, vmup, vmssh and vmhalt (${shell}).`,
    `# Load it from your start-up file: eval "$(vmfile completion ${shell})"`,
    ...(shell === 'zsh' ? ['autoload -U +X compinit && compinit', 'autoload -U +X bashcompinit && bashcompinit'] : []),
    '_vmfile_tables() {',
    table('_vmfile_next', [...next].map(([path, words]) => [path, [...words].sort()])),
    table('_vmfile_flags', [...flags]),
    '}',
    '_vmfile_tables',
    '_vmfile_complete() {',
    // zsh: arrays from 0 and words split as bash does them.
    ...(shell === 'zsh' ? ['  setopt local_options ksh_arrays sh_word_split'] : []),
    '  local cur="${COMP_WORDS[COMP_CWORD]}" program="${COMP_WORDS[0]##*/}" path=vmfile word i',
    '  case "$program" in',
    ...Object.entries(SHORTHANDS).map(([program, id]) => `    ${program}) path='vmfile ${id}' ;;`),
    '    *)',
    '      for ((i = 1; i < COMP_CWORD; i++)); do',
    '        word="${COMP_WORDS[i]}"',
    '        [[ -n "${_vmfile_next[$path $word]+set}" || -n "${_vmfile_flags[$path $word]+set}" ]] || break',
    '        path="$path $word"',
    '      done ;;',
    '  esac',
    // Filtered here, not by compgen: zsh's compgen ignores the word being completed.
    '  local candidates',
    '  if [[ "$cur" == -* ]]; then candidates="${_vmfile_flags[$path]}"; else candidates="${_vmfile_next[$path]}"; fi',
    '  COMPREPLY=()',
    '  for word in $candidates; do',
    '    [[ "$word" == "$cur"* ]] && COMPREPLY+=("$word")',
    '  done',
    '  return 0',
    '}',
    `complete -o default -F _vmfile_complete vmfile ${Object.keys(SHORTHANDS).join(' ')}`,
    '',
  ];
  return lines.join('\n');
}
