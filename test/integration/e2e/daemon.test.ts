/**
 * The per-namespace daemon: started once however many CLIs race to start it,
 * one per network namespace, and the interfaces follow `add`/`del`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { IP } from '../../../support/ip.js';
import { Netns, netnsUnavailable } from '../../../support/netns.js';
import { CLI, contextSwitches, run, sleep, waitFor } from '../../../support/proc.js';
import { control } from '../../../support/ul2tp.js';

const skip = netnsUnavailable();
if (skip) console.log(`# skipping daemon tests: ${skip}`);

describe('per-namespace daemon', { skip: skip || undefined }, () => {
  let ns: Netns;
  let other: Netns;
  before(() => {
    ns = new Netns('ul2d');
    other = new Netns('ul2e');
  });
  after(() => {
    ns?.destroy();
    other?.destroy();
  });

  it('eight CLIs started at the same time start exactly one daemon', async () => {
    const runs = Array.from({ length: 8 }, () => {
      const c = spawn(IP, ['netns', 'exec', ns.name, process.execPath, CLI, 'show', 'tunnel'], { env: ns.env(), stdio: 'ignore' });
      return once(c, 'exit').then(([code]) => code as number);
    });
    const codes = await Promise.all(runs);
    assert.deepEqual(codes, [0, 0, 0, 0, 0, 0, 0, 0]);
    // Daemons that lost the race to the namespace lock exit by themselves.
    const pidsNow = () => run(IP, ['netns', 'pids', ns.name]).stdout.split(/\s+/).filter(Boolean);
    await waitFor(() => pidsNow().length === 1, 10_000);
    const pids = pidsNow();
    assert.equal(pids.length, 1, `exactly one process (the daemon) stays in the namespace: ${pids.join(' ')}`);
    assert.equal(control<{ pid: number }>(ns).pid, Number(pids[0]));
  });

  it('each namespace has its own daemon and its own configuration', () => {
    ns.ok('add', 'tunnel', 'tunnel_id', '7', 'peer_tunnel_id', '8', 'local', '127.0.0.1', 'remote', '127.0.0.2', 'udp_sport', '7000', 'udp_dport', '8000');
    assert.match(ns.ok('show', 'tunnel'), /^Tunnel 7, encap UDP/);
    assert.equal(other.ok('show', 'tunnel'), '');
    assert.notEqual(control<{ pid: number }>(ns).pid, control<{ pid: number }>(other).pid);
    // The same tunnel id is free in the other namespace, as with the kernel.
    other.ok('add', 'tunnel', 'tunnel_id', '7', 'peer_tunnel_id', '8', 'local', '127.0.0.1', 'remote', '127.0.0.2', 'udp_sport', '7000', 'udp_dport', '8000');
    const dup = ns.ul2tp('add', 'tunnel', 'tunnel_id', '7', 'peer_tunnel_id', '8', 'local', '127.0.0.1', 'remote', '127.0.0.2', 'udp_sport', '7001', 'udp_dport', '8000');
    assert.equal(dup.status, 2);
    assert.equal(dup.stderr, 'RTNETLINK answers: File exists\n');
  });

  it('add session returns once the interface exists, DOWN, with the kernel MTU; del session removes it', () => {
    // Loopback underlay: route MTU 65536 → 65536 - 54 (docs/protocol.md §3.4).
    ns.ok('add', 'session', 'tunnel_id', '7', 'session_id', '1', 'peer_session_id', '2');
    const link = ns.exec(IP, ['-o', 'link', 'show', 'l2tpeth0']);
    assert.equal(link.status, 0, 'l2tpeth0 exists as soon as add session returns');
    assert.match(link.stdout, /mtu 65482 .*state DOWN/);
    ns.ok('add', 'session', 'name', 'sess%d', 'tunnel_id', '7', 'session_id', '3', 'peer_session_id', '4', 'l2spec_type', 'none');
    assert.match(ns.exec(IP, ['-o', 'link', 'show', 'sess0']).stdout, /mtu 65486 /);
    const taken = ns.ul2tp('add', 'session', 'name', 'lo', 'tunnel_id', '7', 'session_id', '5', 'peer_session_id', '6');
    assert.equal(taken.status, 2);
    assert.equal(taken.stderr, 'RTNETLINK answers: File exists\n');
    ns.ok('del', 'session', 'tunnel_id', '7', 'session_id', '1');
    assert.notEqual(ns.exec(IP, ['link', 'show', 'l2tpeth0']).status, 0, 'l2tpeth0 removed');
    ns.ok('del', 'tunnel', 'tunnel_id', '7');
    assert.notEqual(ns.exec(IP, ['link', 'show', 'sess0']).status, 0, 'del tunnel removes its sessions');
    const gone = ns.ul2tp('del', 'tunnel', 'tunnel_id', '7');
    assert.equal(gone.status, 2);
    assert.equal(gone.stderr, 'RTNETLINK answers: No such device\n');
  });

  // A daemon serves its namespace for as long as it exists, mostly idle: it should
  // sleep. The check for sequenced sessions that sent a burst (every 25 ms, on the
  // main thread) once woke every daemon 40 times a second regardless.
  it('an idle daemon sleeps: a few wake-ups a second with plain sessions; the sequenced-session check runs only while one sends', async () => {
    ns.ok('add', 'tunnel', 'tunnel_id', '9', 'peer_tunnel_id', '9', 'local', '127.0.0.1', 'remote', '127.0.0.1', 'udp_sport', '7100', 'udp_dport', '7100');
    ns.ok('add', 'session', 'tunnel_id', '9', 'session_id', '1', 'peer_session_id', '1');
    const pid = control<{ pid: number }>(ns).pid;
    /** Context switches per second of the daemon's main thread (where its timers run) over `ms`. */
    const wakeRate = async (ms: number): Promise<number> => {
      const total = (): number => {
        const n = contextSwitches(pid);
        assert.ok(Number.isFinite(n), 'context switch counts in /proc');
        return n;
      };
      const a = total();
      await sleep(ms);
      return ((total() - a) * 1000) / ms;
    };
    await sleep(1000); // start-up done
    const plain = await wakeRate(3000);
    assert.ok(plain < 15, `idle with a plain session: ${plain.toFixed(1)} wake-ups/s`);
    // A sequenced session that sends: the check runs (its wake-ups show), and stops with the session.
    ns.ok('add', 'session', 'name', 'ulsq0', 'tunnel_id', '9', 'session_id', '2', 'peer_session_id', '2', 'seq', 'both');
    ns.ip('addr', 'add', '10.77.0.1/24', 'dev', 'ulsq0');
    ns.ip('link', 'set', 'ulsq0', 'up');
    ns.exec('ping', ['-c', '2', '-i', '0.2', '-W', '1', '10.77.0.2']); // ARP requests: sequence numbers move
    await sleep(1500); // the heartbeat sees them move and writes the state
    const sequenced = await wakeRate(2000);
    assert.ok(sequenced >= 30, `with a sequenced session that sent: ${sequenced.toFixed(1)} wake-ups/s (the burst check runs)`);
    ns.ok('del', 'session', 'tunnel_id', '9', 'session_id', '2');
    await sleep(500);
    const gone = await wakeRate(3000);
    assert.ok(gone < 15, `idle after the sequenced session went: ${gone.toFixed(1)} wake-ups/s`);
    ns.ok('del', 'tunnel', 'tunnel_id', '9');
  });
});
