/**
 * `node bin/ul2tp.js ...` as a user runs it: exact stderr, stdout and exit
 * status; a stand-in daemon (in this process, or started by the CLI itself)
 * answers the control socket. The real daemon's tests are elsewhere.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { USAGE } from '../../../src/api/usage.js';
import { runDir, socketPath } from '../../../src/control/paths.js';
import type { TunnelInfo } from '../../../src/control/protocol.js';
import { validateRequest } from '../../../src/control/validate.js';
import { serveLines } from '../../../support/fake-daemon.js';
import { mkdirSync } from 'node:fs';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const CLI = join(ROOT, 'bin/ul2tp.js');
const FAKE_DAEMON = join(ROOT, 'test/fixtures/cli/fake-daemon.mjs');

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI without blocking this process's event loop (the fake daemon lives here). */
function cli(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

let tmp = '';
let mark = '';
/** Env for runs that must never start a daemon: a start would leave `mark` behind. */
let noDaemon: Record<string, string> = {};

before(() => {
  tmp = mkdtempSync(join(tmpdir(), `ul2tp-cli-${process.pid}-`));
  mark = join(tmp, 'daemon-started');
  noDaemon = { UL2TP_RUNDIR: join(tmp, 'run-none'), UL2TP_DAEMON_ENTRY: FAKE_DAEMON, FAKE_DAEMON_MODE: 'exit3', FAKE_DAEMON_MARK: mark };
});

after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

test('help and no arguments: usage on stderr, exit 255', async () => {
  for (const args of [['help'], [], ['h'], ['-j', 'help'], ['add']]) {
    const r = await cli(args, noDaemon);
    assert.deepEqual(r, { status: 255, stdout: '', stderr: USAGE }, args.join(' '));
  }
});

test('argument errors: exact stderr and status, no daemon started', async () => {
  const cases: Array<[string, string, number]> = [
    ['add tunnel tunnel_id abc', 'Error: argument "abc" is wrong: invalid ID\n\n', 255],
    ['add tunnel tunnel_id 1 peer_tunnel_id 2 local 1.2.3.4.5', 'Error: any valid address is expected rather than "1.2.3.4.5".\n', 1],
    ['add session tunnel_id 1 session_id 2', 'Error: argument "peer_session_id" is required\n', 255],
    ['add session cookie 0102', 'Error: argument "0102" is wrong: cookie must be either 8 or 16 hex digits\n\n', 255],
    ['add session name a/b', 'Error: argument "a/b" is wrong: "name" not a valid ifname\n', 255],
    ['add session seq sometimes', 'Unknown seq value "sometimes"\n', 255],
    ['frobnicate', 'Command "frobnicate" is unknown, try "ip l2tp help".\n', 255],
    ['sh t', `Unknown command: t\n${USAGE}`, 255],
    ['del session tunnel_id', 'Command line is not complete. Try option "help"\n', 255],
    ['add session offset 3', 'Ignoring option "offset"\nError: argument "tunnel_id" is required\n', 255],
    ['add offset 3', 'Ignoring option "offset"\nError: argument "tunnel or session" is required\n', 255],
    ['-j -p show', USAGE, 255],
  ];
  for (const [line, stderr, status] of cases) {
    const r = await cli(line.split(' '), noDaemon);
    assert.deepEqual(r, { status, stdout: '', stderr }, line);
  }
  assert.equal(existsSync(mark), false, 'no daemon was started for an argument error');
});

test('--version and --help come from commander', async () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.deepEqual(await cli(['--version'], noDaemon), { status: 0, stdout: `${pkg.version}\n`, stderr: '' });
  const h = await cli(['--help'], noDaemon);
  assert.equal(h.status, 0);
  assert.match(h.stdout, /^Usage: ul2tp /);
  assert.match(h.stdout, /daemon/);
  const bad = await cli(['--bogus'], noDaemon);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^error: unknown option '--bogus'/);
  assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
});

test('a daemon that cannot start: one "Error:" line, exit 1', async () => {
  const r = await cli(['show', 'tunnel'], { ...noDaemon, UL2TP_RUNDIR: join(tmp, 'run-exit3') });
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^Error: cannot start ul2tp daemon: the daemon exited with status 3 \(see .*daemon\.log\)\n$/);
  assert.deepEqual(JSON.parse(readFileSync(mark, 'utf8')), ['daemon', '--background']);
  rmSync(mark);
});

test('first command in a namespace starts the daemon, silently', async () => {
  const env = { ...noDaemon, UL2TP_RUNDIR: join(tmp, 'run-auto'), FAKE_DAEMON_MODE: 'serve' };
  const r = await cli(['-j', 'show', 'tunnel'], env);
  assert.deepEqual(r, { status: 0, stdout: '[]\n', stderr: '' });
  assert.deepEqual(JSON.parse(readFileSync(mark, 'utf8')), ['daemon', '--background']);
  rmSync(mark);
});

/** A tiny daemon in this process: tunnels only, kernel errnos for duplicates and unknown ids. */
async function fakeDaemon(): Promise<{ server: Server; requests: unknown[] }> {
  const tunnels = new Map<number, TunnelInfo>();
  const requests: unknown[] = [];
  mkdirSync(runDir(), { recursive: true, mode: 0o700 });
  const { server } = await serveLines(socketPath(), (sock, line) => {
    const raw = JSON.parse(line) as { id: number };
    requests.push(raw);
    const reply = (body: object): boolean => sock.write(JSON.stringify({ id: raw.id, ...body }) + '\n');
    const req = validateRequest(raw);
    const kernel = (errno: string, message: string): boolean => reply({ ok: false, error: { code: 'KERNEL', errno, message } });
    switch (req.op) {
      case 'tunnel_create': {
        const a = req.attrs;
        if (tunnels.has(a.tunnel_id)) return void kernel('EEXIST', 'File exists');
        tunnels.set(a.tunnel_id, {
          tunnel_id: a.tunnel_id,
          peer_tunnel_id: a.peer_tunnel_id,
          encap: a.encap,
          family: a.local.includes(':') ? 6 : 4,
          local: a.local,
          remote: a.remote,
          udp_sport: a.udp_sport,
          udp_dport: a.udp_dport,
          udp_csum: a.udp_csum === true,
          udp6_csum_tx: a.udp6_csum_tx,
          udp6_csum_rx: a.udp6_csum_rx,
          stats: {},
        });
        return void reply({ ok: true, result: {} });
      }
      case 'tunnel_delete':
        if (!tunnels.delete(req.attrs.tunnel_id)) return void kernel('ENODEV', 'No such device');
        return void reply({ ok: true, result: {} });
      case 'tunnel_get':
        return void reply({ ok: true, result: { tunnels: [...tunnels.values()].sort((x, y) => x.tunnel_id - y.tunnel_id) } });
      default:
        return void kernel('ENODEV', 'No such device');
    }
  });
  return { server, requests };
}

test('add/show/del through the control socket: output and exit codes', async () => {
  const rundir = join(tmp, 'run-inproc');
  const saved = process.env.UL2TP_RUNDIR;
  process.env.UL2TP_RUNDIR = rundir;
  const { server, requests } = await fakeDaemon();
  const env = { ...noDaemon, UL2TP_RUNDIR: rundir };
  try {
    const add = 'add tunnel tunnel_id 3000 peer_tunnel_id 4000 encap udp local 1.2.3.4 remote 5.6.7.8 udp_sport 5000 udp_dport 6000'.split(' ');
    assert.deepEqual(await cli(add, env), { status: 0, stdout: '', stderr: '' });
    assert.deepEqual(requests[0], {
      id: 1,
      version: 1,
      op: 'tunnel_create',
      attrs: {
        tunnel_id: 3000,
        peer_tunnel_id: 4000,
        encap: 'udp',
        local: '1.2.3.4',
        remote: '5.6.7.8',
        udp_sport: 5000,
        udp_dport: 6000,
        udp6_csum_tx: true,
        udp6_csum_rx: true,
      },
    });
    assert.deepEqual(await cli(add, env), { status: 2, stdout: '', stderr: 'RTNETLINK answers: File exists\n' });
    assert.deepEqual(await cli('add tunnel tid 10 ptid 20 encap ip local 2001:db8::1 remote 2001:db8::2'.split(' '), env), {
      status: 0,
      stdout: '',
      stderr: '',
    });
    assert.deepEqual(await cli(['show', 'tunnel'], env), {
      status: 0,
      stdout:
        'Tunnel 10, encap IP\n  From 2001:db8::1 to 2001:db8::2\n  Peer tunnel 20\n' +
        'Tunnel 3000, encap UDP\n  From 1.2.3.4 to 5.6.7.8\n  Peer tunnel 4000\n  UDP source / dest ports: 5000/6000\n  UDP checksum: disabled\n',
      stderr: '',
    });
    assert.deepEqual(await cli(['-j', 'show', 'tunnel', 'tunnel_id', '3000'], env), {
      status: 0,
      stdout: '[{"tunnel_id":3000,"encap":"UDP","local":"1.2.3.4","peer":"5.6.7.8","peer_tunnel":4000,"local_port":5000,"peer_port":6000,"checksum":false}]\n',
      stderr: '',
    });
    assert.deepEqual(await cli(['--json', '--pretty', 'show', 'tunnel', 'tunnel_id', '9'], env), { status: 0, stdout: '[ ]\n', stderr: '' });
    assert.deepEqual(await cli('del tunnel tunnel_id 3000'.split(' '), env), { status: 0, stdout: '', stderr: '' });
    assert.deepEqual(await cli('del tunnel tunnel_id 3000'.split(' '), env), { status: 2, stdout: '', stderr: 'RTNETLINK answers: No such device\n' });
    assert.deepEqual(await cli('del session session_id 5'.split(' '), env), { status: 2, stdout: '', stderr: 'RTNETLINK answers: No such device\n' });
    assert.deepEqual(requests.at(-1), { id: 1, version: 1, op: 'session_delete', attrs: { tunnel_id: 0, session_id: 5 } });
    assert.equal(existsSync(mark), false, 'the running daemon was used, none started');
  } finally {
    server.close();
    if (saved === undefined) delete process.env.UL2TP_RUNDIR;
    else process.env.UL2TP_RUNDIR = saved;
  }
});

test('a stale socket (daemon died) triggers a start', async () => {
  const rundir = join(tmp, 'run-stale');
  const saved = process.env.UL2TP_RUNDIR;
  process.env.UL2TP_RUNDIR = rundir;
  let path: string;
  try {
    mkdirSync(runDir(), { recursive: true });
    path = socketPath();
  } finally {
    if (saved === undefined) delete process.env.UL2TP_RUNDIR;
    else process.env.UL2TP_RUNDIR = saved;
  }
  // Bind a socket file and leave it behind without a listener.
  const py = spawn('python3', ['-c', `import socket; s = socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(path)})`]);
  const code = await new Promise((r) => py.on('close', r));
  if (code !== 0 || !existsSync(path)) return; // no python3: nothing to test here
  const r = await cli(['show', 'session'], { ...noDaemon, UL2TP_RUNDIR: rundir, FAKE_DAEMON_MODE: 'serve' });
  assert.deepEqual(r, { status: 0, stdout: '', stderr: '' });
  assert.equal(existsSync(mark), true);
  rmSync(mark);
});
