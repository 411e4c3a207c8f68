/**
 * `npm run demo`: the main job, end to end, on this machine. Builds two
 * network namespaces joined by a veth "underlay", runs the man page's site A /
 * site B setup through `ul2tp` (with cookies and sequencing), pings across,
 * runs a short throughput test, prints `show` and the counters, explains what
 * happened, and removes everything it created (also on Ctrl-C or failure).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CLI = join(ROOT, 'bin', 'ul2tp.js');
const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p)) ?? 'ip';
const tag = `${process.pid % 10000}`;
const nsA = `ul2tp-demo-a${tag}`;
const nsB = `ul2tp-demo-b${tag}`;
/** The demo daemons' run directory: made once the preflight checks pass. */
let runDir = '';
let env: NodeJS.ProcessEnv = process.env;
const color = process.stdout.isTTY;
const bold = (s: string) => (color ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (color ? `\x1b[2m${s}\x1b[0m` : s);

function step(title: string): void {
  process.stdout.write(`\n${bold(`== ${title}`)}\n`);
}

/** Run a command inside a namespace, echoing it like a shell session. */
function inNs(ns: string, site: string, args: string[], show = true): string {
  const shown = args[0] === process.execPath ? ['ul2tp', ...args.slice(2)] : args;
  if (show) process.stdout.write(dim(`${site}# ${shown.join(' ')}\n`));
  const r = spawnSync(IP, ['netns', 'exec', ns, ...args], { encoding: 'utf8', env, timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${shown.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

const ul2tp = (ns: string, site: string, ...args: string[]) => inNs(ns, site, [process.execPath, CLI, ...args]);

let cleaned = false;
function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  for (const ns of [nsA, nsB]) {
    const pids = spawnSync(IP, ['netns', 'pids', ns], { encoding: 'utf8' }).stdout?.split(/\s+/).filter(Boolean) ?? [];
    for (const p of pids) {
      try {
        process.kill(Number(p), 'SIGTERM');
      } catch {
        /* gone */
      }
    }
  }
  // Give the daemons a moment to exit, then remove the namespaces (and everything in them).
  spawnSync('sleep', ['0.5']);
  for (const ns of [nsA, nsB]) spawnSync(IP, ['netns', 'del', ns]);
  if (runDir !== '' && !process.env.UL2TP_DEMO_KEEP) rmSync(runDir, { recursive: true, force: true });
}

function preflight(): string | null {
  if (process.getuid?.() !== 0) return 'the demo creates network namespaces and TAP interfaces: run it as root (sudo npm run demo)';
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing: TAP interfaces are not available here';
  if (spawnSync(IP, ['netns', 'list']).status !== 0) return 'iproute2 `ip netns` does not work here';
  if (spawnSync('sh', ['-c', 'command -v ping']).status !== 0) return 'the demo pings across the tunnel, and ping is not installed: apt-get install iputils-ping (Debian/Ubuntu) or dnf install iputils';
  if (!existsSync(join(ROOT, 'dist', 'src', 'cli', 'main.js'))) return 'not built yet: run `npm ci` (or `npm run build`) first';
  return null;
}

async function iperf(): Promise<string | null> {
  if (spawnSync('sh', ['-c', 'command -v iperf3']).status !== 0) return null;
  const server = spawn(IP, ['netns', 'exec', nsB, 'iperf3', '-s', '-1'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  try {
    process.stdout.write(dim(`site-A# iperf3 -c 10.42.1.2 -t 3\n`));
    const out = inNs(nsA, 'site-A', ['iperf3', '-c', '10.42.1.2', '-t', '3', '-J'], false);
    const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
    return `${(j.end.sum_received.bits_per_second / 1e9).toFixed(2)} Gbit/s`;
  } finally {
    if (server.exitCode === null && server.pid) process.kill(server.pid, 'SIGKILL');
  }
}

async function main(): Promise<void> {
  const why = preflight();
  if (why) {
    process.stderr.write(`ul2tp demo: ${why}\n`);
    process.exit(1);
  }
  runDir = mkdtempSync(join(tmpdir(), 'ul2tp-demo-'));
  env = { ...process.env, UL2TP_RUNDIR: runDir };
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });

  step('1. Two hosts: network namespaces site-A and site-B joined by a veth cable');
  execFileSync(IP, ['netns', 'add', nsA]);
  execFileSync(IP, ['netns', 'add', nsB]);
  execFileSync(IP, ['link', 'add', 'eth0', 'netns', nsA, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', nsB]);
  inNs(nsA, 'site-A', ['ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'eth0']);
  inNs(nsB, 'site-B', ['ip', 'addr', 'add', '192.0.2.2/24', 'dev', 'eth0']);
  for (const [ns, site] of [
    [nsA, 'site-A'],
    [nsB, 'site-B'],
  ]) {
    inNs(ns, site, ['ip', 'link', 'set', 'eth0', 'up'], false);
    inNs(ns, site, ['ip', 'link', 'set', 'lo', 'up'], false);
  }

  step('2. The man page setup, in userspace: a tunnel and a session on each site (cookies + sequence numbers)');
  ul2tp(nsA, 'site-A', 'add', 'tunnel', 'tunnel_id', '3000', 'peer_tunnel_id', '4000', 'encap', 'udp', 'local', '192.0.2.1', 'remote', '192.0.2.2', 'udp_sport', '5000', 'udp_dport', '6000');
  ul2tp(nsA, 'site-A', 'add', 'session', 'tunnel_id', '3000', 'session_id', '1000', 'peer_session_id', '2000', 'cookie', 'a1b2c3d4', 'peer_cookie', '0badf00d', 'seq', 'both');
  ul2tp(nsB, 'site-B', 'add', 'tunnel', 'tunnel_id', '4000', 'peer_tunnel_id', '3000', 'encap', 'udp', 'local', '192.0.2.2', 'remote', '192.0.2.1', 'udp_sport', '6000', 'udp_dport', '5000');
  ul2tp(nsB, 'site-B', 'add', 'session', 'tunnel_id', '4000', 'session_id', '2000', 'peer_session_id', '1000', 'cookie', '0badf00d', 'peer_cookie', 'a1b2c3d4', 'seq', 'both');
  inNs(nsA, 'site-A', ['ip', 'link', 'set', 'l2tpeth0', 'up']);
  inNs(nsB, 'site-B', ['ip', 'link', 'set', 'l2tpeth0', 'up']);
  inNs(nsA, 'site-A', ['ip', 'addr', 'add', '10.42.1.1', 'peer', '10.42.1.2', 'dev', 'l2tpeth0']);
  inNs(nsB, 'site-B', ['ip', 'addr', 'add', '10.42.1.2', 'peer', '10.42.1.1', 'dev', 'l2tpeth0']);

  step('3. Ping across the tunnel');
  process.stdout.write(inNs(nsA, 'site-A', ['ping', '-c', '3', '-i', '0.2', '10.42.1.2']));

  step('4. A short throughput test');
  const rate = await iperf();
  process.stdout.write(rate ? `TCP over the tunnel: ${bold(rate)}\n` : 'iperf3 is not installed: skipped (apt-get install iperf3)\n');

  step('5. What `ip l2tp show` would print, and the counters');
  process.stdout.write(ul2tp(nsA, 'site-A', 'show', 'tunnel'));
  process.stdout.write(ul2tp(nsA, 'site-A', 'show', 'session'));
  process.stdout.write(ul2tp(nsA, 'site-A', '-s', 'show', 'session'));
  process.stdout.write(inNs(nsA, 'site-A', ['ip', '-s', 'link', 'show', 'l2tpeth0']));

  step('What just happened');
  process.stdout.write(
    [
      'Neither namespace has the kernel l2tp modules. In each one, ul2tp started a small daemon',
      'that created the TAP interface l2tpeth0 and a UDP socket (5000 <-> 6000). Every Ethernet',
      'frame sent on l2tpeth0 was wrapped in an L2TPv3 header (session id, a 4-byte cookie, and a',
      'sequence number) and sent over UDP across the veth; the other side checked the cookie and',
      'the sequence, stripped the header and handed the frame to its own l2tpeth0, exactly as the',
      "kernel's l2tp_eth would. The commands are the man page's, byte for byte.",
      '',
    ].join('\n'),
  );
}

main()
  .then(() => {
    step('Cleaning up');
    cleanup();
    process.stdout.write('Removed the namespaces, interfaces and daemons the demo created.\n');
  })
  .catch((e: Error) => {
    cleanup();
    process.stderr.write(`ul2tp demo failed: ${e.message}\n`);
    process.exit(1);
  });
