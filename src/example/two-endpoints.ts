/**
 * Two in-memory L2TPv3 endpoints exchanging Ethernet frames over UDP with
 * cookies and sequencing (`seq both`). One packet is lost on the link and
 * one packet with a wrong cookie is injected, to show how the receiver
 * reacts and what it counts (the kernel's rules, docs/protocol.md §2).
 *
 * Run: node dist/src/example/two-endpoints.js
 */
import { MemLink } from '../io/mem/link.js';
import { L2tpv3Repr } from '../wire/l2tpv3.js';
import { COUNTER_NAMES, EXTRA_COUNTERS, readCounters, RX_COOKIE_DISCARDS, RX_ERRORS, SEND_SEQ } from '../engine/stats.js';
import { RX_RESULT_NAMES } from '../engine/rx-result.js';
import type { Session } from '../engine/session.js';
import type { Tunnel } from '../engine/tunnel.js';

const link = MemLink.pair({ seed: 42 });
const A = link.a;
const B = link.b;

// Tunnel 10 on A <-> tunnel 20 on B, UDP 5000 <-> 6000.
A.addTunnel({ tunnelId: 10, peerTunnelId: 20, local: '192.0.2.1', remote: '192.0.2.2', udpSport: 5000, udpDport: 6000 });
B.addTunnel({ tunnelId: 20, peerTunnelId: 10, local: '192.0.2.2', remote: '192.0.2.1', udpSport: 6000, udpDport: 5000 });
// Each side's cookie is the other side's peer_cookie.
const sa = A.addSession({ tunnelId: 10, sessionId: 2000, peerSessionId: 3000, cookie: 'deadbeef', peerCookie: '0102030405060708', sendSeq: true, recvSeq: true });
const sb = B.addSession({ tunnelId: 20, sessionId: 3000, peerSessionId: 2000, cookie: '0102030405060708', peerCookie: 'deadbeef', sendSeq: true, recvSeq: true });

/** A small Ethernet frame: broadcast dst, locally administered src, EtherType 0x88b5 (experimental), text payload. */
function frame(src: number, text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  const f = Buffer.alloc(14 + Math.max(payload.length, 32));
  f.fill(0xff, 0, 6);
  f.set([0x02, 0, 0, 0, 0, src], 6);
  f.writeUInt16BE(0x88b5, 12);
  payload.copy(f, 14);
  return f;
}

const textOf = (f: Buffer) => f.subarray(14).toString('utf8').replace(/\0+$/, '');

function show(title: string): void {
  console.log(`\n== ${title}`);
}

function printDeliveries(who: string, from: number): number {
  const ep = who === 'A' ? A : B;
  for (let i = from; i < ep.received.length; i++) {
    const r = ep.received[i];
    console.log(`   ${who} got frame on session ${r.sessionId}: "${textOf(r.frame)}" (${r.frame.length} bytes)`);
  }
  return ep.received.length;
}

function counterTable(rows: Array<[string, Float64Array, number]>): void {
  const head = ['counter'.padEnd(20), ...rows.map(([n]) => n.padStart(12))].join('');
  console.log('   ' + head);
  for (const n of COUNTER_NAMES) {
    const cells = rows.map(([, st, base]) => String(readCounters(st, base)[n]).padStart(12));
    console.log('   ' + [n.padEnd(20), ...cells].join(''));
  }
  // ours: drops the kernel does not count
  for (const [n, idx] of EXTRA_COUNTERS) console.log('   ' + [n.padEnd(20), ...rows.map(([, st, base]) => String(st[base + idx]).padStart(12))].join(''));
}

const slot = (x: Tunnel | Session): [Float64Array, number] => [x.stats, x.base];

show('A sends 10 frames to B (seq both); the link loses frame #3');
let seenB = 0;
for (let i = 0; i < 10; i++) {
  if (i === 3) link.faults.dropNext();
  A.send(10, 2000, frame(1, `A->B #${i}`));
}
link.flush();
seenB = printDeliveries('B', seenB);
console.log(`   B expected ns next: ${sb.nr}. Without a reorder timeout the kernel drops the 5 frames after a gap`);
console.log('   (rx_seq_discards) and resyncs on the 6th consecutive out-of-sequence frame.');

show('A stranger sends B a frame for session 3000 with the wrong cookie (cafef00d instead of deadbeef)');
{
  const f = frame(9, 'forged');
  const hdr = { encap: 'udp' as const, flags: 0x0003, sessionId: 3000, cookie: Buffer.from('cafef00d', 'hex'), l2spec: { sequenced: true, ns: sb.nr } };
  const pkt = Buffer.alloc(L2tpv3Repr.headerLen(hdr) + f.length);
  const n = L2tpv3Repr.emit(hdr, pkt, 0);
  f.copy(pkt, n);
  link.injectRaw(B, { encap: 'udp', family: 4, src: '192.0.2.1', dst: '192.0.2.2', sport: 5000, dport: 6000, data: pkt });
  link.flush();
  printDeliveries('B', seenB);
  console.log(`   B dropped it: rx_cookie_discards=${sb.stats[sb.base + RX_COOKIE_DISCARDS]}, rx_errors=${sb.stats[sb.base + RX_ERRORS]}`);
}

show('B answers with 3 frames; A receives them in order');

for (let i = 0; i < 3; i++) B.send(20, 3000, frame(2, `B->A #${i}`));
link.flush();
printDeliveries('A', 0);

show('Sequence state');
console.log(`   A: ns=${sa.ns} nr=${sa.nr} send_seq=${sa.stats[sa.base + SEND_SEQ]}   B: ns=${sb.ns} nr=${sb.nr} send_seq=${sb.stats[sb.base + SEND_SEQ]}`);
console.log(`   link: ${JSON.stringify(link.faults.counts)}`);
console.log(`   B decap results: ${B.results.map((n, i) => (n ? `${RX_RESULT_NAMES[i]}=${n}` : '')).filter(Boolean).join(' ')}`);

show('Counters (tunnel and session slots; bytes = L2TP header + frame)');
counterTable([
  ['A tun 10', ...slot(A.table.getTunnel(10)!)],
  ['A ses 2000', ...slot(sa)],
  ['B tun 20', ...slot(B.table.getTunnel(20)!)],
  ['B ses 3000', ...slot(sb)],
]);
