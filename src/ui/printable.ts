/**
 * Text from files someone else may have written (a project's machine names, its path),
 * made safe to print on a terminal: control characters (C0, DEL, C1, which start
 * terminal escapes), and the invisible characters that reorder or break a line, are
 * shown as \xNN or \u{NNNN}. Machine-readable output (JSON) keeps the text exact.
 */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (char) => {
    const code = char.codePointAt(0) ?? 0;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}
