/**
 * The real process around the CLI: stdout/stderr, the daemon connection
 * (the library client src/api/client.ts, imported only when a command needs it), and the last-resort
 * handlers that keep stack traces away from users.
 */
import type { CliIo, Transport } from './run.js';

let isReply: (e: unknown) => boolean = () => false;

/** stdout/stderr of this process and a lazily loaded control client. */
export function processIo(): CliIo {
  return {
    stdout: (s) => void process.stdout.write(s),
    stderr: (s) => void process.stderr.write(s),
    async connect(): Promise<Transport> {
      // The library's client (src/api/client.ts): the CLI talks to the daemon as any program does.
      const api = await import('../api/client.js');
      isReply = api.isDaemonReply;
      return api.connect();
    },
    isReply: (e) => isReply(e),
  };
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Prints `Error: <message>` and exits 1: the answer to anything unexpected. */
export function fatal(e: unknown): never {
  try {
    process.stderr.write(`Error: ${messageOf(e)}\n`);
  } finally {
    process.exit(1);
  }
}

/**
 * Installs the last-resort handlers (no stack trace ever reaches a user) and
 * makes a closed stdout (`ul2tp show tunnel | head -1`) end the program quietly.
 * Returns a function that removes the handlers again (the daemon installs its own).
 */
export function installFatalHandlers(): () => void {
  const onFatal = (e: unknown): void => fatal(e);
  const onStdoutError = (e: NodeJS.ErrnoException): void => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    fatal(e);
  };
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
  process.stdout.on('error', onStdoutError);
  return () => {
    process.off('uncaughtException', onFatal);
    process.off('unhandledRejection', onFatal);
    process.stdout.off('error', onStdoutError);
  };
}
