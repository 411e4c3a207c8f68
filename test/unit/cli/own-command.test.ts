/**
 * The own commands' one grammar (own-command.ts): a keyword table, values,
 * flags, GNU `--option=VALUE`, and the usage errors every own command shares.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { idValue, parseKeywords, positiveInteger, usageExit, type OwnKeyword } from '../../../src/cli/own-command.js';
import { parseStatsArgs } from '../../../src/cli/stats.js';
import { parseCaptureArgs } from '../../../src/cli/capture.js';
import { runDaemonCommand, DAEMON_HELP } from '../../../src/cli/daemon-cmd.js';
import type { CliIo } from '../../../src/cli/run.js';
import { L2tpError } from '../../../src/errors.js';

interface A {
  id?: number;
  n?: number;
  flag?: boolean;
  file?: string;
}
const TABLE: ReadonlyArray<OwnKeyword<A>> = [
  { names: ['tunnel_id', 'tid'], value: idValue, apply: (a, v) => void (a.id = v as number) },
  { names: ['-c', '--count'], value: positiveInteger, apply: (a, v) => void (a.n = v as number) },
  { names: ['--flag'], apply: (a) => void (a.flag = true) },
  { names: ['--file'], value: (t) => t, apply: (a, v) => void (a.file = v as string) },
];

test('parseKeywords: aliases, values, flags, later values win, --option=VALUE', () => {
  assert.deepEqual(parseKeywords(['tid', '0x10', '-c', '3', '--flag', 'tunnel_id', '7'], TABLE, {}), { id: 7, n: 3, flag: true });
  assert.deepEqual(parseKeywords(['--file=a=b', '--count=2'], TABLE, {}), { file: 'a=b', n: 2 });
  assert.deepEqual(parseKeywords(['--file', '--flag'], TABLE, {}), { file: '--flag' }, 'a value is taken as it is');
  const usage = (args: string[], message: string): void => {
    assert.throws(() => parseKeywords(args, TABLE, {}), (e: unknown) => e instanceof L2tpError && e.code === 'USAGE' && e.message === message);
  };
  usage(['bogus'], 'Unknown option: bogus');
  usage(['--flag=1'], 'Unknown option: --flag=1');
  usage(['tid=3'], 'Unknown option: tid=3');
  usage(['-c'], 'Error: "-c" needs a value');
  usage(['tid', '0'], 'Error: argument "0" is wrong: "tid" is invalid');
  usage(['-c', '1.5'], 'Error: argument "1.5" is wrong: "-c" must be a positive integer');
});

test('the own commands share it: stats and capture parse with their tables', () => {
  assert.deepEqual(parseStatsArgs(['sid', '5', '-i', '0.5', 'count', '2']), { tunnelId: 0, sessionId: 5, intervalS: 0.5, count: 2 });
  assert.deepEqual(parseCaptureArgs(['inner', '-w', '-', 'tid', '3']), { tunnelId: 3, sessionId: 0, file: '-', inner: true, count: 0 });
});

function io(): { io: CliIo; err: () => string } {
  let err = '';
  return {
    io: {
      stdout: () => {},
      stderr: (s) => void (err += s),
      connect: () => Promise.reject(new Error('no daemon here')),
      isReply: () => false,
    },
    err: () => err,
  };
}

test('ul2tp daemon: its options in the same grammar; bad ones fail before anything starts', async () => {
  const a = io();
  assert.equal(await runDaemonCommand(['--backend', 'quantum'], a.io, () => {}), 255);
  assert.equal(a.err(), `Error: argument "quantum" is wrong: "--backend" must be koffi or native-free\n${DAEMON_HELP}`);
  const b = io();
  assert.equal(await runDaemonCommand(['--foreground', '--bogus'], b.io, () => {}), 255);
  assert.match(b.err(), /^Unknown option: --bogus\nUsage: ul2tp daemon /);
  const c = io();
  assert.equal(await runDaemonCommand(['--config=/nonexistent/ul2tp.conf'], c.io, () => {}), 1);
  assert.match(c.err(), /^Error: cannot read \/nonexistent\/ul2tp\.conf: /);
  const d = io();
  assert.equal(await runDaemonCommand(['--metrics', '192.0.2.1:9999'], d.io, () => {}), 1);
  assert.match(d.err(), /not a loopback address/);
  assert.equal(usageExit(io().io, new L2tpError('USAGE', 'x'), 'H'), 255);
});
