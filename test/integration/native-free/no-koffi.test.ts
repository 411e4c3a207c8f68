/**
 * A user who cannot load native addons: the package installed with
 * `npm install --omit=optional` (no koffi at all) still creates a working
 * tunnel, and the daemon says in one line which backend runs and why.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { netnsUnavailable, ping, underlay, type Underlay } from '../../../support/netns.js';
import { ROOT } from '../../../support/proc.js';

const skip = netnsUnavailable();
if (skip) console.log(`# skipping install without koffi: ${skip}`);

describe('installed with --omit=optional (no koffi)', { skip: skip || undefined }, () => {
  let dir: string;
  let u: Underlay;
  let cli: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ul2tp-nokoffi-'));
    const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 180_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
      .trim()
      .split('\n')
      .pop()!;
    execFileSync(
      'npm',
      ['install', '--omit=optional', '--no-audit', '--no-fund', '--prefer-offline', '--prefix', join(dir, 'app'), join(dir, packed)],
      { cwd: dir, encoding: 'utf8', timeout: 300_000, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    cli = join(dir, 'app', 'node_modules', 'ul2tp', 'bin', 'ul2tp.js');
    u = underlay();
  });
  after(() => {
    u?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('has no koffi anywhere in the installed tree', () => {
    assert.ok(existsSync(cli), 'the ul2tp CLI is installed');
    assert.equal(existsSync(join(dir, 'app', 'node_modules', 'koffi')), false);
  });

  it('creates a working tunnel with the native-free backend, and says so', () => {
    const run = (ns: typeof u.a, ...args: string[]) => {
      const r = ns.exec(process.execPath, [cli, ...args], 60_000);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    };
    run(u.a, 'add', 'tunnel', 'tunnel_id', '1', 'peer_tunnel_id', '2', 'local', u.a4, 'remote', u.b4, 'udp_sport', '5000', 'udp_dport', '6000');
    run(u.b, 'add', 'tunnel', 'tunnel_id', '2', 'peer_tunnel_id', '1', 'local', u.b4, 'remote', u.a4, 'udp_sport', '6000', 'udp_dport', '5000');
    run(u.a, 'add', 'session', 'tunnel_id', '1', 'session_id', '10', 'peer_session_id', '20', 'cookie', '01020304', 'peer_cookie', '0a0b0c0d');
    run(u.b, 'add', 'session', 'tunnel_id', '2', 'session_id', '20', 'peer_session_id', '10', 'cookie', '0a0b0c0d', 'peer_cookie', '01020304');
    u.a.ip('link', 'set', 'l2tpeth0', 'up');
    u.b.ip('link', 'set', 'l2tpeth0', 'up');
    u.a.ip('addr', 'add', '10.61.0.1/24', 'dev', 'l2tpeth0');
    u.b.ip('addr', 'add', '10.61.0.2/24', 'dev', 'l2tpeth0');
    assert.equal(ping(u.a, '10.61.0.2', 3), 3);
    // The daemon's one line about the backend, in its log (background daemons log to the run dir).
    const sub = readdirSync(u.a.runDir)[0];
    const logText = readFileSync(join(u.a.runDir, sub, 'daemon.log'), 'utf8');
    assert.match(logText, /dataplane backend: native-free \(falling back: the koffi native addon is not installed/);
    const ipEncap = u.a.exec(process.execPath, [cli, 'add', 'tunnel', 'tunnel_id', '3', 'peer_tunnel_id', '4', 'encap', 'ip', 'local', u.a4, 'remote', u.b4]);
    assert.equal(ipEncap.status, 2);
    assert.match(ipEncap.stderr, /^RTNETLINK answers: Protocol not supported\nencap ip needs raw IP sockets.*koffi/);
  });
});
