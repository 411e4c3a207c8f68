/**
 * packaging/compose.yaml without Docker: two network namespaces play the two
 * containers. In each, `ul2tp daemon --config FILE` runs in the foreground as
 * a container's main process would (ENTRYPOINT ["ul2tp","daemon"], compose's
 * command ["--config", ...]: logs on stderr) with the packaged configuration
 * files (packaging/config/site-*.conf, the underlay addresses swapped for the
 * test's). Then: ping across, SIGTERM stops the daemon cleanly (exit 0), a
 * restarted daemon restores the configuration, and fatal errors exit
 * non-zero with a message on stderr. Also the service-facing help texts.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync, readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { IP } from '../../../support/ip.js';
import { netnsUnavailable, ping, underlay, type Netns, type Underlay } from '../../../support/netns.js';
import { CLI, ROOT, run, waitFor } from '../../../support/proc.js';

const skip = netnsUnavailable();
if (skip) console.log(`# skipping container tests: ${skip}`);

/** `ul2tp daemon [ARGS]` in the foreground, as the container's main process; stderr collected. */
function startDaemon(ns: Netns, args: string[] = []): { proc: ChildProcess; log: () => string } {
  const proc = ns.spawn(process.execPath, [CLI, 'daemon', ...args]);
  let err = '';
  proc.stderr!.on('data', (s: string) => (err += s));
  return { proc, log: () => err };
}

/** packaging/config/site-<side>.conf with the compose network's addresses replaced by the underlay's. */
function siteConfig(side: 'a' | 'b', u: Underlay, dir: string): string {
  const text = readFileSync(join(ROOT, 'packaging', 'config', `site-${side}.conf`), 'utf8').replaceAll('172.30.0.10', u.a4).replaceAll('172.30.0.20', u.b4);
  const file = join(dir, `site-${side}.conf`);
  writeFileSync(file, text);
  return file;
}

describe('containers: the compose setup with namespaces', { skip: skip || undefined }, () => {
  let u: Underlay;
  let confDir: string;
  before(() => {
    u = underlay();
    confDir = mkdtempSync(join(tmpdir(), `ul2tp-site-${process.pid}-`));
  });
  after(() => {
    u?.destroy();
    rmSync(confDir, { recursive: true, force: true });
  });

  it('daemons as main processes, configured by the packaged --config files, carry pings; SIGTERM exits 0; a restart restores', async () => {
    const confA = siteConfig('a', u, confDir);
    const da = startDaemon(u.a, ['--config', confA]);
    const db = startDaemon(u.b, ['--config', siteConfig('b', u, confDir)]);
    assert.ok(await waitFor(() => da.log().includes('listening on') && db.log().includes('listening on'), 15_000), `daemons up: ${da.log()} ${db.log()}`);
    assert.match(da.log(), /^ul2tp\[\d+\]: dataplane backend: /m, 'logs on stderr');
    assert.match(da.log(), /config: 2 added, 0 removed, 0 unchanged/);
    assert.doesNotMatch(da.log() + db.log(), /config: .*:\d+: /, 'every ip line of the file applied');
    // `ip netns exec` execs node: the CLI talks to the foreground daemon, it started no other.
    assert.match(u.a.ok('show', 'session'), /interface name: l2tpeth0/);
    assert.equal(u.a.daemonPid(), da.proc.pid);
    assert.equal(ping(u.a, '10.99.0.2', 3), 3);

    da.proc.kill('SIGTERM');
    const [code] = (await once(da.proc, 'exit')) as [number | null];
    assert.equal(code, 0, 'SIGTERM is a clean stop');
    assert.match(da.log(), /SIGTERM: stopping/);

    // restart: policy on-failure / docker restart → state.json brings the sessions back; the file finds them unchanged.
    const da2 = startDaemon(u.a, ['--config', confA]);
    assert.ok(await waitFor(() => da2.log().includes('listening on'), 15_000), da2.log());
    assert.match(da2.log(), /restored 1 tunnel\(s\) and 1 session\(s\)/);
    assert.match(da2.log(), /config: 0 added, 0 removed, 2 unchanged/);
    assert.ok(await waitFor(() => ping(u.a, '10.99.0.2', 1) === 1, 10_000), 'traffic flows again after the restart');
    da2.proc.kill('SIGTERM');
    db.proc.kill('SIGTERM');
    await once(da2.proc, 'exit');
  });

  it('a fatal error (unusable run directory) exits non-zero with a message on stderr', () => {
    const dir = mkdtempSync(join(tmpdir(), `ul2tp-fatal-${process.pid}-`));
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    try {
      // Inside a test namespace, so that nothing could ever start in the host's.
      const r = run(IP, ['netns', 'exec', u.a.name, process.execPath, CLI, 'daemon'], 20_000, { ...process.env, UL2TP_RUNDIR: file });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /^Error: .*not-a-dir/m);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      // A second daemon in the same namespace is refused (exit 1) with a message.
      const ns = u.b;
      const d = ns.ul2tp('show', 'tunnel'); // starts B's background daemon
      assert.equal(d.status, 0, d.stderr);
      const second = ns.exec(process.execPath, [CLI, 'daemon'], 20_000);
      assert.equal(second.status, 1);
      assert.match(second.stderr, /already running/);
      // Bad options fail before anything starts.
      const bad = u.a.exec(process.execPath, [CLI, 'daemon', '--backend', 'quantum'], 20_000);
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr, /quantum/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('help texts for the service-facing commands; "ul2tp help" stays iproute2\'s usage', () => {
    const h = run(process.execPath, [CLI, 'daemon', '--help']);
    assert.equal(h.status, 0);
    assert.match(h.stdout, /--metrics <addr:port>/);
    assert.match(h.stdout, /foreground/);
    const top = run(process.execPath, [CLI, '--help']);
    assert.equal(top.status, 0);
    for (const c of ['stats', 'capture', 'impair', 'daemon']) assert.match(top.stdout, new RegExp(`ul2tp ${c} `));
    for (const c of ['stats', 'capture', 'impair']) {
      const r = run(process.execPath, [CLI, c, '--help']);
      assert.equal(r.status, 0, c);
      assert.match(r.stdout, new RegExp(`^Usage: ul2tp ${c} `));
    }
    const usage = run(process.execPath, [CLI, 'help']);
    assert.equal(usage.status, 255);
    assert.match(usage.stderr, /^Usage: ip l2tp add tunnel/);
    // The man page is valid roff and names every command.
    const man = run('man', ['-l', '-P', 'cat', join(ROOT, 'docs', 'ul2tp.8')], 20_000, { ...process.env, MANWIDTH: '100' });
    assert.equal(man.status, 0, man.stderr);
    for (const w of ['SYNOPSIS', 'capture', 'impair', 'stats', 'UL2TP_RUNDIR', 'UL2TP_BACKEND', 'EXIT STATUS', 'EXAMPLES']) assert.ok(man.stdout.includes(w), w);
    assert.ok(readFileSync(join(ROOT, 'packaging', 'ul2tp.service'), 'utf8').includes('Restart=on-failure'));
  });
});
