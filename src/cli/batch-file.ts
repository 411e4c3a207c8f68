/**
 * iproute2's batch-file syntax (`ip -batch FILE`), as its line reader and
 * word splitter do it:
 *   - a `#` starts a comment that runs to the end of the line (anywhere,
 *     even inside quotes);
 *   - a backslash right before the newline joins the next line (whose own
 *     comment is cut too); a file ending in such a line prints
 *     "Missing continuation line" and ends the batch there;
 *   - words are separated by spaces, tabs, CR and LF; a word that *starts*
 *     with ' or " runs to the next same quote (no escapes), an unterminated
 *     one is "Unterminated quoted string" (exit 1); a quote inside a word is
 *     an ordinary character;
 *   - blank lines are skipped; line numbers count physical lines, and a
 *     joined command carries the number of its last line.
 *   - at most MAX_ARGS - 1 words: more is "Too many arguments to command" (exit 1).
 */

/** iproute2's argument vector size in batch mode. */
export const MAX_ARGS = 512;

export type BatchItem =
  /** One command: its words and the line number iproute2 reports for it. */
  | { kind: 'cmd'; lineno: number; args: string[] }
  /** The reader stops the program: print `message` (with newline) and exit with `status`. */
  | { kind: 'fatal'; lineno: number; message: string; status: number }
  /** The reader stops the batch (no more commands), after printing `message`. */
  | { kind: 'end'; lineno: number; message: string };

const WS = ' \t\r\n';

/** iproute2's makeargs: the words of one command line, or a fatal error text. */
export function makeArgs(line: string, maxArgs = MAX_ARGS): string[] | { error: string } {
  const argv: string[] = [];
  let i = 0;
  const n = line.length;
  while (i < n) {
    while (i < n && WS.includes(line[i])) i++;
    if (i >= n) break;
    if (argv.length >= maxArgs - 1) return { error: 'Too many arguments to command' };
    const c = line[i];
    if (c === "'" || c === '"') {
      const end = line.indexOf(c, i + 1);
      if (end < 0) return { error: 'Unterminated quoted string' };
      argv.push(line.slice(i + 1, end));
      i = end + 1;
    } else {
      let end = i;
      while (end < n && !WS.includes(line[end])) end++;
      argv.push(line.slice(i, end));
      i = end + 1; // the separator is consumed with the word
    }
  }
  return argv;
}

function cutComment(s: string): string {
  const h = s.indexOf('#');
  return h < 0 ? s : s.slice(0, h);
}

/** Splits `text` (a whole batch file) into commands the way `ip -batch` reads them. */
export function* readBatch(text: string): Generator<BatchItem> {
  // Physical lines with their newline (getline keeps it); a last line may lack one.
  const phys: string[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) {
      if (start < text.length) phys.push(text.slice(start));
      break;
    }
    phys.push(text.slice(start, nl + 1));
    start = nl + 1;
  }
  let lineno = 0;
  let k = 0;
  while (k < phys.length) {
    let line = cutComment(phys[k++]);
    lineno++;
    let cont: number;
    let ended = false;
    while ((cont = line.indexOf('\\\n')) >= 0) {
      if (k >= phys.length) {
        yield { kind: 'end', lineno, message: 'Missing continuation line' };
        ended = true;
        break;
      }
      const next = cutComment(phys[k++]);
      lineno++;
      line = line.slice(0, cont) + next;
    }
    if (ended) return;
    const args = makeArgs(line);
    if (!Array.isArray(args)) {
      yield { kind: 'fatal', lineno, message: args.error, status: 1 };
      return;
    }
    if (args.length === 0) continue;
    yield { kind: 'cmd', lineno, args };
  }
}
