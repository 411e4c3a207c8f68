/**
 * ip-l2tp(8) EXAMPLES, verbatim, through the `ip` shim placed first in PATH:
 * site A and site B in two namespaces (1.2.3.4 and 5.6.7.8 exist only on
 * their veth pair), "Configure as IP interfaces", then ping across and
 * compare `ip l2tp show` with what iproute2 prints for that configuration.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { IP } from '../../../support/ip.js';
import { Netns, netnsUnavailable, uniq } from '../../../support/netns.js';
import { ROOT, run, sh } from '../../../support/proc.js';

const skip = netnsUnavailable();
if (skip) console.log(`# skipping man page example: ${skip}`);

const SITE_A = [
  'ip l2tp add tunnel tunnel_id 3000 peer_tunnel_id 4000 \\\n  encap udp local 1.2.3.4 remote 5.6.7.8 \\\n  udp_sport 5000 udp_dport 6000',
  'ip l2tp add session tunnel_id 3000 session_id 1000 \\\n  peer_session_id 2000',
];
const SITE_B = [
  'ip l2tp add tunnel tunnel_id 4000 peer_tunnel_id 3000 \\\n  encap udp local 5.6.7.8 remote 1.2.3.4 \\\n  udp_sport 6000 udp_dport 5000',
  'ip l2tp add session tunnel_id 4000 session_id 2000 \\\n  peer_session_id 1000',
];

describe('ip-l2tp(8) site A / site B through the ip shim', { skip: skip || undefined }, () => {
  let a: Netns;
  let b: Netns;
  let shimDir: string;
  before(() => {
    a = new Netns('ul2ma');
    b = new Netns('ul2mb');
    const va = uniq('ma');
    const vb = uniq('mb');
    sh(IP, ['link', 'add', va, 'netns', a.name, 'type', 'veth', 'peer', 'name', vb, 'netns', b.name]);
    a.ip('addr', 'add', '1.2.3.4/32', 'dev', va);
    b.ip('addr', 'add', '5.6.7.8/32', 'dev', vb);
    a.ip('link', 'set', va, 'up');
    b.ip('link', 'set', vb, 'up');
    a.ip('route', 'add', '5.6.7.8/32', 'dev', va);
    b.ip('route', 'add', '1.2.3.4/32', 'dev', vb);
    shimDir = mkdtempSync(join(tmpdir(), 'ul2tp-shim-'));
    symlinkSync(join(ROOT, 'bin', 'ul2tp-ip.js'), join(shimDir, 'ip'));
  });
  after(() => {
    a?.destroy();
    b?.destroy();
    if (shimDir) rmSync(shimDir, { recursive: true, force: true });
  });

  /** Run a shell script in `ns` with the shim first in PATH, as a user's script would. */
  const script = (ns: Netns, lines: string[]) =>
    run(IP, ['netns', 'exec', ns.name, 'sh', '-ec', lines.join('\n')], 60_000, {
      ...ns.env(),
      PATH: `${shimDir}:${process.env.PATH}`,
    });

  it('sets up both sites verbatim and they ping each other', () => {
    let r = script(a, [...SITE_A, 'ip link set l2tpeth0 up mtu 1488', 'ip addr add 10.42.1.1 peer 10.42.1.2 dev l2tpeth0']);
    assert.equal(r.status, 0, r.stderr);
    r = script(b, [...SITE_B, 'ip link set l2tpeth0 up mtu 1488', 'ip addr add 10.42.1.2 peer 10.42.1.1 dev l2tpeth0']);
    assert.equal(r.status, 0, r.stderr);
    r = script(a, ['ping -c 3 -i 0.2 -W 2 10.42.1.2']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /3 received/);
  });

  it('shows what iproute2 would print', () => {
    let r = script(a, ['ip l2tp show tunnel']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout,
      'Tunnel 3000, encap UDP\n  From 1.2.3.4 to 5.6.7.8\n  Peer tunnel 4000\n  UDP source / dest ports: 5000/6000\n  UDP checksum: disabled\n',
    );
    r = script(b, ['ip l2tp show session']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'Session 2000 in tunnel 4000\n  Peer session 1000, tunnel 3000\n  interface name: l2tpeth0\n  offset 0, peer offset 0\n\n');
    r = script(a, ['ip -j l2tp show session']);
    assert.equal(
      r.stdout,
      '[{"session_id":1000,"tunnel_id":3000,"peer_session_id":2000,"peer_tunnel_id":4000,"interface":"l2tpeth0"}]\n',
    );
    // Non-l2tp commands went to the real iproute2: the MTU and address are set.
    r = script(a, ['ip -o link show l2tpeth0', 'ip -o addr show dev l2tpeth0']);
    assert.match(r.stdout, /mtu 1488/);
    assert.match(r.stdout, /inet 10\.42\.1\.1 peer 10\.42\.1\.2\/32/);
  });

  it('gives the session interface the kernel default MTU (1446 over a 1500 underlay) and state DOWN', () => {
    const r = script(a, ['ip l2tp add session tunnel_id 3000 session_id 1001 peer_session_id 2001', 'ip -o link show l2tpeth1']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /l2tpeth1: <BROADCAST,MULTICAST> mtu 1446 .*state DOWN/);
    assert.match(r.stdout, /link\/ether ([0-9a-f]{2}:){5}[0-9a-f]{2}/);
  });
});
