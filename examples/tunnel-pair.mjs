#!/usr/bin/env node
// A tunnel pair in two network namespaces, driven from one Node program with
// the ul2tp library, then the sessions' counters.
//
//   sudo node examples/tunnel-pair.mjs          (from the repository, after npm run build)
//   sudo node node_modules/ul2tp/examples/tunnel-pair.mjs   (from a project that installed ul2tp)
//
// Needs root, iproute2 and ping. Creates namespaces ul2tp-ex-a-PID and
// ul2tp-ex-b-PID joined by a veth pair, an L2TPv3 tunnel and session in each
// (one daemon per namespace, started on first use), pings across the
// pseudowire, prints the counters the daemons keep, then removes everything.
import { execFileSync } from 'node:child_process';
import { connect } from 'ul2tp';

const tag = process.pid;
const nsA = `ul2tp-ex-a-${tag}`;
const nsB = `ul2tp-ex-b-${tag}`;
const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'inherit'] });
const inNs = (ns, ...args) => execFileSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8' });

const clients = [];
try {
  // Two namespaces joined by a veth pair: 192.0.2.1 <-> 192.0.2.2 (the "WAN").
  ip('netns', 'add', nsA);
  ip('netns', 'add', nsB);
  ip('link', 'add', `exa${tag}`, 'netns', nsA, 'type', 'veth', 'peer', 'name', `exb${tag}`, 'netns', nsB);
  ip('-n', nsA, 'addr', 'add', '192.0.2.1/24', 'dev', `exa${tag}`);
  ip('-n', nsB, 'addr', 'add', '192.0.2.2/24', 'dev', `exb${tag}`);
  for (const [ns, dev] of [[nsA, `exa${tag}`], [nsB, `exb${tag}`]]) {
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'link', 'set', dev, 'up');
  }

  // One client per namespace's daemon (started there on first use).
  const a = await connect({ netns: nsA });
  const b = await connect({ netns: nsB });
  clients.push(a, b);

  // The same keywords as `ip l2tp add tunnel` / `ip l2tp add session`.
  await a.addTunnel({ tunnel_id: 3000, peer_tunnel_id: 4000, encap: 'udp', local: '192.0.2.1', remote: '192.0.2.2', udp_sport: 5000, udp_dport: 6000 });
  await b.addTunnel({ tunnel_id: 4000, peer_tunnel_id: 3000, encap: 'udp', local: '192.0.2.2', remote: '192.0.2.1', udp_sport: 6000, udp_dport: 5000 });
  const ifA = await a.addSession({ tunnel_id: 3000, session_id: 1000, peer_session_id: 2000, seq: 'both' });
  const ifB = await b.addSession({ tunnel_id: 4000, session_id: 2000, peer_session_id: 1000, seq: 'both' });
  console.log(`session interfaces: ${nsA} ${ifA}, ${nsB} ${ifB}`);

  // A wrong call fails as `ip l2tp` would: the same text, and the errno of the daemon's refusal.
  try {
    await a.addTunnel({ tunnel_id: 3000, peer_tunnel_id: 4000, local: '192.0.2.1', remote: '192.0.2.2', udp_sport: 5000, udp_dport: 6000 });
  } catch (e) {
    console.log(`adding tunnel 3000 again: ${e.code} ${e.errno}: RTNETLINK answers: ${e.message}`);
  }

  ip('-n', nsA, 'addr', 'add', '10.42.1.1/24', 'dev', ifA);
  ip('-n', nsB, 'addr', 'add', '10.42.1.2/24', 'dev', ifB);
  ip('-n', nsA, 'link', 'set', ifA, 'up', 'mtu', '1446');
  ip('-n', nsB, 'link', 'set', ifB, 'up', 'mtu', '1446');
  process.stdout.write(inNs(nsA, 'ping', '-c', '3', '-i', '0.2', '-W', '2', '10.42.1.2').split('\n').filter((l) => /packets transmitted/.test(l)).join('\n') + '\n');

  // Counters: one sample now, then a short stream of samples.
  for (const [name, c] of [[nsA, a], [nsB, b]]) {
    const { sessions } = await c.counters();
    for (const s of sessions) {
      console.log(`${name} tunnel ${s.tunnel_id} session ${s.session_id} ${s.ifname}: rx ${s.stats.rx_packets} packets ${s.stats.rx_bytes} bytes, tx ${s.stats.tx_packets} packets ${s.stats.tx_bytes} bytes`);
    }
  }
  for await (const sample of a.watchCounters({ intervalMs: 200, count: 2 })) {
    console.log(`${new Date(sample.at).toISOString()} ${nsA}: ${sample.sessions.map((s) => `${s.ifname} tx_packets=${s.stats.tx_packets}`).join(' ')}`);
  }
} finally {
  // Stop each namespace's daemon (a daemon keeps its namespace alive), then remove the namespaces.
  for (const [i, c] of clients.entries()) {
    try {
      await c.deleteTunnel(i === 0 ? 3000 : 4000).catch(() => {});
      const { pid } = await c.status();
      c.close();
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 100; i++) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    } catch {
      c.close();
    }
  }
  for (const ns of [nsA, nsB]) {
    try {
      ip('netns', 'del', ns);
    } catch {
      // already gone
    }
  }
}
