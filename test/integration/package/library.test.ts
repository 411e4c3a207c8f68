/**
 * The published package as a user gets it: `npm pack` the repository,
 * `npm install ./ul2tp-*.tgz` in a separate project, then `import { connect }
 * from 'ul2tp'` creates a tunnel and a session inside a test namespace, and
 * the bundled .d.ts type-checks a TypeScript user.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Netns, netnsUnavailable } from '../../../support/netns.js';
import { ROOT, run } from '../../../support/proc.js';

const npmMissing = spawnSync('npm', ['--version']).status === 0 ? '' : 'npm not found';

const CONSUMER = `
import { connect, L2tpError, PROTOCOL_VERSION } from 'ul2tp';
const c = await connect({ netns: process.argv[2] });
const out = { resolved: import.meta.resolve('ul2tp'), protocol: PROTOCOL_VERSION };
const tunnel = { tunnel_id: 7001, peer_tunnel_id: 7002, encap: 'udp', local: '10.1', remote: '10.2', udp_sport: 7001, udp_dport: 7002 };
await c.addTunnel(tunnel);
out.ifname = await c.addSession({ tunnel_id: 7001, session_id: 71, peer_session_id: 72, name: process.argv[3] });
out.tunnels = (await c.tunnels()).map((t) => [t.tunnel_id, t.local, t.remote]);
const fail = async (p) => { try { await p; return null; } catch (e) { return { l2tp: e instanceof L2tpError, code: e.code, errno: e.errno, message: e.message }; } };
out.dup = await fail(c.addTunnel(tunnel));
out.badId = await fail(c.addTunnel({ ...tunnel, tunnel_id: 'x' }));
out.missing = await fail(c.addSession({ tunnel_id: 7001, session_id: 73 }));
out.hello = await c.hello();
c.close();
console.log(JSON.stringify(out));
`;

const TYPED = `
import { connect, type TunnelInfo, type L2tpError } from 'ul2tp';
export async function f(): Promise<TunnelInfo[]> {
  const c = await connect({ requestTimeoutMs: 5000 });
  const e: L2tpError | null = null;
  void e;
  // @ts-expect-error: local, remote and peer_tunnel_id are required
  await c.addTunnel({ tunnel_id: 1 });
  for await (const s of c.watchCounters({ count: 1 })) void s.sessions[0]?.stats.rx_packets;
  return c.tunnels();
}
`;

test('the packed tarball installs in another project; its library creates a tunnel in a namespace', { skip: netnsUnavailable() || npmMissing || undefined, timeout: 300_000 }, (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'ul2tp-pack-'));
  const ns = new Netns('ul2pk');
  t.after(() => {
    ns.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });
  // dist/ is built by the test run; the tarball is what `npm publish` would upload.
  execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', tmp], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const tgz = readdirSync(tmp).find((f) => /^ul2tp-.*\.tgz$/.test(f));
  assert.ok(tgz, 'npm pack wrote ul2tp-*.tgz');
  const files = execFileSync('tar', ['-tzf', join(tmp, tgz)], { encoding: 'utf8' }).split('\n');
  for (const f of ['package/LICENSE', 'package/dist/src/index.js', 'package/dist/src/index.d.ts', 'package/completion/ul2tp.bash', 'package/docs/control-protocol.md', 'package/docs/ul2tp.8'])
    assert.ok(files.includes(f), `${f} is in the tarball`);
  assert.ok(!files.some((f) => f.startsWith('package/dist/test/')), 'no tests in the tarball');

  const app = join(tmp, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'ul2tp-consumer', private: true, type: 'module' }));
  // In the consumer's directory (npm install elsewhere would add the tarball to that project).
  const inst = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(tmp, tgz)], { cwd: app, encoding: 'utf8', timeout: 240_000 });
  assert.equal(inst.status, 0, `npm install: ${inst.stderr}`);
  writeFileSync(join(app, 'consumer.mjs'), CONSUMER);
  writeFileSync(join(app, 'typed.ts'), TYPED);

  // The tunnel's addresses (`10.1` and `10.2` on the command line) exist in the namespace.
  ns.ip('addr', 'add', '10.1.0.0/8', 'dev', 'lo');
  const ifname = `pk${process.pid % 100000}`;
  const r = spawnSync(process.execPath, ['consumer.mjs', ns.name, ifname], { cwd: app, encoding: 'utf8', env: ns.env(), timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.match(String(out.resolved), new RegExp(`^file://${app}/node_modules/ul2tp/`), 'the installed copy, not the repository');
  assert.equal(out.ifname, ifname);
  assert.deepEqual(out.tunnels, [[7001, '10.1.0.0', '10.2.0.0']], "addresses read as iproute2's get_addr reads them");
  assert.deepEqual(out.dup, { l2tp: true, code: 'KERNEL', errno: 'EEXIST', message: 'File exists' });
  assert.deepEqual((out.hello as { protocol: number }).protocol, out.protocol);
  // The interface exists in the namespace, and the installed CLI sees the library's tunnel.
  ns.ip('link', 'show', ifname);
  const cli = join(app, 'node_modules', '.bin', 'ul2tp');
  const show = ns.exec(cli, ['show', 'tunnel']);
  assert.equal(show.status, 0, show.stderr);
  assert.match(show.stdout, /^Tunnel 7001, encap UDP\n {2}From 10\.1\.0\.0 to 10\.2\.0\.0\n/);
  // The library's errors are the CLI's: same code, same text on stderr.
  for (const [key, argv] of [
    ['badId', 'add tunnel tunnel_id x peer_tunnel_id 7002 encap udp local 10.1 remote 10.2 udp_sport 7001 udp_dport 7002'],
    ['missing', 'add session tunnel_id 7001 session_id 73'],
  ] as const) {
    const e = out[key] as { l2tp: boolean; code: string; message: string };
    assert.equal(e.l2tp, true, key);
    const c = ns.exec(cli, argv.split(' '));
    assert.equal(c.status, 255, key);
    assert.equal(c.stderr, `${e.message}\n`, key);
  }

  // The bundled declarations type-check a TypeScript user (strict, NodeNext).
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const types = run(
    process.execPath,
    [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', '--typeRoots', join(ROOT, 'node_modules', '@types'), '--types', 'node', join(app, 'typed.ts')],
    120_000,
  );
  assert.equal(types.status, 0, types.stdout + types.stderr);
});
