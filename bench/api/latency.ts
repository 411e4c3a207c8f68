/**
 * Per-call latency of the library vs the CLI: N `show tunnel` calls each,
 * against one daemon in a namespace of its own (10 tunnels configured).
 *
 *   library, one connection   `await client.tunnels()` N times
 *   library, per call         connect() + tunnels() + close() N times
 *   CLI                       `ip netns exec NS ul2tp show tunnel` N times
 *   (baseline)                `ip netns exec NS true`: the part of the CLI figure that is not ul2tp
 *
 * Usage (root, after npm run build): node dist/bench/api/latency.js [N]
 * Prints a Markdown table (median, p90, mean per call).
 */
import { spawnSync } from 'node:child_process';
import { connect } from '../../src/api/client.js';
import { IP } from '../../support/ip.js';
import { Netns } from '../../support/netns.js';
import { CLI, cleanupAll, installCleanupHandlers, stopPid, tempDir } from '../../support/proc.js';

const N = Number(process.argv[2] ?? 200);

function stats(ms: number[]): { median: number; p90: number; mean: number } {
  const s = [...ms].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], p90: s[Math.floor(s.length * 0.9)], mean: s.reduce((a, b) => a + b, 0) / s.length };
}

async function time(n: number, fn: () => Promise<void> | void): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

installCleanupHandlers();
const ns = new Netns('ul2lat');
process.env.UL2TP_RUNDIR = tempDir('ul2tp-lat-');
const client = await connect({ netns: ns.name });
const { pid } = await client.status();
for (let t = 1; t <= 10; t++) {
  await client.addTunnel({ tunnel_id: t, peer_tunnel_id: t, local: '127.0.0.1', remote: '127.0.0.1', udp_sport: 20000 + t, udp_dport: 30000 + t });
}
const cli = (args: string[]): void => {
  const r = spawnSync(IP, ['netns', 'exec', ns.name, process.execPath, CLI, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ul2tp ${args.join(' ')}: ${r.stderr}`);
};
// Warm-up (file cache, JIT).
await time(20, () => client.tunnels().then(() => {}));
await time(5, () => cli(['show', 'tunnel']));

const rows: Array<[string, number[]]> = [];
rows.push(['library, one connection: `client.tunnels()`', await time(N, () => client.tunnels().then(() => {}))]);
rows.push([
  'library, connect per call: `connect()` + `tunnels()` + `close()`',
  await time(N, async () => {
    const c = await connect({ netns: ns.name, autostart: false });
    await c.tunnels();
    c.close();
  }),
]);
rows.push(['CLI: `ip netns exec NS ul2tp show tunnel`', await time(N, () => cli(['show', 'tunnel']))]);
rows.push(['baseline: `ip netns exec NS true`', await time(N, () => void spawnSync(IP, ['netns', 'exec', ns.name, 'true']))]);

client.close();
await stopPid(pid);
cleanupAll();

const f = (x: number): string => (x < 1 ? `${(x * 1000).toFixed(0)} µs` : `${x.toFixed(1)} ms`);
console.log(`${N} \`show tunnel\` calls each (10 tunnels), ${new Date().toISOString().slice(0, 10)}\n`);
console.log('| per call | median | p90 | mean |\n|---|---|---|---|');
for (const [name, ms] of rows) {
  const s = stats(ms);
  console.log(`| ${name} | ${f(s.median)} | ${f(s.p90)} | ${f(s.mean)} |`);
}
