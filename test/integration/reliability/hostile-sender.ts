/**
 * Hostile packet generator for the reliability test, run inside the *peer*
 * namespace (`ip netns exec B node hostile-sender.js CONFIG_JSON`).
 *
 * Why from the peer namespace with IP_HDRINCL: ul2tp's UDP tunnel socket is
 * kernel-connected to `remote:udp_dport`, so only datagrams carrying the
 * peer's source address *and* port ever reach L2TP parsing. An attacker has
 * to spoof both; a raw IPPROTO_RAW socket (implies IP_HDRINCL) writes the
 * whole IPv4 header, so we can use the peer's address and port (which the
 * peer's own daemon has bound: a raw socket does not care) or any other
 * source (for the raw-IP source filter). Oversize datagrams are fragmented
 * here by hand (a header-included raw socket never fragments), and the
 * target reassembles them as it would any datagram.
 *
 * For every packet we compute which counter of the target must move, so the
 * test can compare exactly. The result printed on stdout (one JSON object):
 *   { sent: {kind: n}, expect: {"<slot>.<counter>": n}, packets, fragments, errors }
 * Slots: udpTunnel, ipTunnel, orphan (namespace-level), traffic, victim, sink, ipSession.
 */
import { createRequire } from 'node:module';

export interface HostileConfig {
  /** Target (the daemon's local address) and our spoofed peer address. */
  dst: string;
  src: string;
  /** A source address that is not the tunnel's remote (raw-IP source filter). */
  foreignSrc: string;
  /** UDP tunnel ports: peer's sport (our spoofed source port) and the target's port. */
  udpSport: number;
  udpDport: number;
  /** Session ids that exist on the target: every one (for rerolling random ids). */
  knownSids: number[];
  traffic: { sid: number; cookie: string };
  victim: { sid: number; cookie: string };
  sink: { sid: number };
  ipSession: { sid: number; cookie: string };
  /** Optional IPv6 raw-IP target (encap ip over IPv6): addresses and its session. */
  ip6?: { dst: string; src: string; foreignSrc: string; session: { sid: number; cookie: string } };
  seconds: number;
  /** Packets per second (fragments of one datagram count as one packet). */
  rate: number;
  seed?: number;
}

type Kind =
  | 'u_random'
  | 'u_zero'
  | 'u_trunc_short'
  | 'u_trunc_hdr'
  | 'u_bad_cookie'
  | 'u_no_session'
  | 'u_bad_version'
  | 'u_tbit'
  | 'u_seq_abuse'
  | 'u_oversize_nosess'
  | 'u_oversize_frame'
  | 'u_tiny_frame'
  | 'i_random'
  | 'i_zero'
  | 'i_control'
  | 'i_no_session'
  | 'i_spoofed_src'
  | 'i_trunc'
  | 'i_bad_cookie'
  | 'i_options'
  | 'i_oversize'
  | 'j_random'
  | 'j_zero'
  | 'j_control'
  | 'j_no_session'
  | 'j_spoofed_src'
  | 'j_trunc'
  | 'j_bad_cookie';

/** Relative weights: oversize kinds are rarer (each is up to ~45 fragments). */
const WEIGHTS: Array<[Kind, number]> = [
  ['u_random', 10],
  ['u_zero', 3],
  ['u_trunc_short', 4],
  ['u_trunc_hdr', 4],
  ['u_bad_cookie', 6],
  ['u_no_session', 6],
  ['u_bad_version', 4],
  ['u_tbit', 4],
  ['u_seq_abuse', 8],
  ['u_oversize_nosess', 1],
  ['u_oversize_frame', 1],
  ['u_tiny_frame', 3],
  ['i_random', 10],
  ['i_zero', 3],
  ['i_control', 4],
  ['i_no_session', 6],
  ['i_spoofed_src', 4],
  ['i_trunc', 4],
  ['i_bad_cookie', 6],
  ['i_options', 3],
  ['i_oversize', 1],
  ['j_random', 5],
  ['j_zero', 2],
  ['j_control', 2],
  ['j_no_session', 3],
  ['j_spoofed_src', 3],
  ['j_trunc', 2],
  ['j_bad_cookie', 3],
];

const IPPROTO_UDP = 17;
const IPPROTO_L2TP = 115;
const FRAG_PAYLOAD = 1480; // multiple of 8; 20 + 1480 = 1500 = the veth MTU

/** Small deterministic PRNG (mulberry32) so a failing run can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function v4(s: string): number[] {
  return s.split('.').map(Number);
}

/** 16 bytes of an IPv6 address written in full or with one '::'. */
function v6(s: string): Buffer {
  const [head, tail] = s.includes('::') ? s.split('::') : [s, ''];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

export function main(cfg: HostileConfig): void {
  const require = createRequire(import.meta.url);
  const koffi = require('koffi') as typeof import('koffi');
  const lib = koffi.load('libc.so.6');
  const socket = lib.func('int socket(int, int, int)') as (a: number, b: number, c: number) => number;
  const sendto = lib.func('long sendto(int, const uint8_t *, size_t, int, const uint8_t *, uint32_t)') as (
    fd: number,
    buf: Uint8Array,
    len: number,
    flags: number,
    addr: Uint8Array,
    alen: number,
  ) => number;
  const errnoOf = () => (koffi as unknown as { errno(): number }).errno();
  const fd = socket(2 /* AF_INET */, 3 /* SOCK_RAW */, 255 /* IPPROTO_RAW: IP_HDRINCL */);
  if (fd < 0) throw new Error(`raw socket: errno ${errnoOf()}`);
  const sa = Buffer.alloc(16);
  sa.writeUInt16LE(2, 0);
  Buffer.from(v4(cfg.dst)).copy(sa, 4);

  // IPv6: IPPROTO_RAW implies IPV6_HDRINCL as well.
  const fd6 = cfg.ip6 ? socket(10 /* AF_INET6 */, 3, 255) : -1;
  if (cfg.ip6 && fd6 < 0) throw new Error(`raw IPv6 socket: errno ${errnoOf()}`);
  const sa6 = Buffer.alloc(28);
  sa6.writeUInt16LE(10, 0);
  if (cfg.ip6) v6(cfg.ip6.dst).copy(sa6, 8);
  const weights = WEIGHTS.filter(([k]) => cfg.ip6 || !k.startsWith('j_'));

  const rand = rng(cfg.seed ?? Date.now());
  const ri = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1)); // inclusive
  const rbytes = (n: number) => {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0;
    return b;
  };
  const known = new Set(cfg.knownSids);
  const unknownSid = () => {
    for (;;) {
      const s = (rand() * 0x1_0000_0000) >>> 0;
      if (s !== 0 && !known.has(s)) return s;
    }
  };
  const cookieOf = (hex: string) => Buffer.from(hex, 'hex');
  const wrongCookie = (hex: string) => {
    const c = cookieOf(hex);
    const w = rbytes(c.length);
    if (w.equals(c)) w[0] ^= 1;
    return w;
  };

  const sent: Record<string, number> = {};
  const expect: Record<string, number> = {};
  const bump = (o: Record<string, number>, k: string, n = 1) => (o[k] = (o[k] ?? 0) + n);
  let packets = 0;
  let fragments = 0;
  let errors = 0;
  let ipId = ri(1, 0xffff);
  const pkt = Buffer.alloc(65535 + 60);

  /** Send one IPv4 datagram (fragmenting by hand when it exceeds 1500 bytes). */
  const sendIp = (proto: number, src: string, payload: Buffer, ihlWords = 5) => {
    const hl = ihlWords * 4;
    ipId = (ipId % 0xffff) + 1;
    const emit = (fragOff: number, more: boolean, chunk: Buffer) => {
      pkt[0] = 0x40 | ihlWords;
      pkt[1] = 0;
      pkt.writeUInt16BE(hl + chunk.length, 2); // the kernel rewrites tot_len anyway
      pkt.writeUInt16BE(ipId, 4);
      pkt.writeUInt16BE((more ? 0x2000 : 0) | (fragOff >> 3), 6);
      pkt[8] = 64;
      pkt[9] = proto;
      pkt.writeUInt16BE(0, 10); // the kernel fills the checksum for IP_HDRINCL
      Buffer.from(v4(src)).copy(pkt, 12);
      Buffer.from(v4(cfg.dst)).copy(pkt, 16);
      pkt.fill(1, 20, hl); // IP options: NOPs
      chunk.copy(pkt, hl);
      for (let tries = 0; ; tries++) {
        const r = sendto(fd, pkt, hl + chunk.length, 0, sa, 16);
        if (r >= 0) break;
        const e = errnoOf();
        if ((e === 105 || e === 11) && tries < 1000) continue; // ENOBUFS/EAGAIN: retry
        errors++;
        break;
      }
      fragments++;
    };
    if (hl + payload.length <= 1500) emit(0, false, payload);
    else {
      for (let off = 0; off < payload.length; off += FRAG_PAYLOAD) {
        const end = Math.min(off + FRAG_PAYLOAD, payload.length);
        emit(off, end < payload.length, payload.subarray(off, end));
      }
    }
    packets++;
  };
  /** One IPv6 packet, next header 115 (no extension headers, no fragmentation). */
  const sendIp6 = (src: string, payload: Buffer) => {
    const p6 = Buffer.alloc(40 + payload.length);
    p6.writeUInt32BE(0x60000000, 0);
    p6.writeUInt16BE(payload.length, 4);
    p6[6] = IPPROTO_L2TP;
    p6[7] = 64;
    v6(src).copy(p6, 8);
    v6(cfg.ip6!.dst).copy(p6, 24);
    payload.copy(p6, 40);
    for (let tries = 0; ; tries++) {
      if (sendto(fd6, p6, p6.length, 0, sa6, 28) >= 0) break;
      const e = errnoOf();
      if ((e === 105 || e === 11) && tries < 1000) continue;
      errors++;
      break;
    }
    fragments++;
    packets++;
  };
  const sendUdp = (l2tp: Buffer) => {
    const u = Buffer.allocUnsafe(8 + l2tp.length);
    u.writeUInt16BE(cfg.udpSport, 0);
    u.writeUInt16BE(cfg.udpDport, 2);
    u.writeUInt16BE(8 + l2tp.length, 4);
    u.writeUInt16BE(0, 6); // IPv4: a zero checksum is always accepted
    l2tp.copy(u, 8);
    sendIp(IPPROTO_UDP, cfg.src, u);
  };
  /** L2TPv3-over-UDP data header: flags/ver, reserved, session id. */
  const udpHdr = (sid: number, ver = 3, tbit = false) => {
    const h = Buffer.alloc(8);
    h.writeUInt16BE((tbit ? 0x8000 : 0) | ver, 0);
    h.writeUInt32BE(sid >>> 0, 4);
    return h;
  };
  const sublayer = (s: boolean, ns: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(((s ? 0x40000000 : 0) | (ns & 0xffffff)) >>> 0, 0);
    return b;
  };
  const frame = (n: number) => rbytes(n);

  const total = weights.reduce((a, [, w]) => a + w, 0);
  const pick = (): Kind => {
    let x = rand() * total;
    for (const [k, w] of weights) if ((x -= w) < 0) return k;
    return weights[0][0];
  };

  const one = (kind: Kind) => {
    bump(sent, kind);
    switch (kind) {
      case 'u_random': {
        // Model decapUdp's classification; reroll what would hit a real session.
        for (;;) {
          const b = rbytes(ri(0, 300));
          if (b.length < 14) return void (sendUdp(b), bump(expect, 'udpTunnel.rx_short'));
          if (b[0] & 0x80) return void (sendUdp(b), bump(expect, 'udpTunnel.rx_control'));
          if ((b[1] & 0x0f) !== 2 && known.has(b.readUInt32BE(4))) continue;
          sendUdp(b);
          return void bump(expect, 'udpTunnel.rx_no_session');
        }
      }
      case 'u_zero':
        sendUdp(Buffer.alloc(0));
        return void bump(expect, 'udpTunnel.rx_short');
      case 'u_trunc_short':
        sendUdp(Buffer.concat([udpHdr(cfg.traffic.sid), cookieOf(cfg.traffic.cookie)]).subarray(0, ri(1, 13)));
        return void bump(expect, 'udpTunnel.rx_short');
      case 'u_trunc_hdr': {
        // Valid session, but shorter than header + cookie + sublayer (8 + 8 + 4).
        const full = Buffer.concat([udpHdr(cfg.traffic.sid), cookieOf(cfg.traffic.cookie), sublayer(false, 0)]);
        sendUdp(full.subarray(0, ri(14, full.length - 1)));
        return void bump(expect, 'udpTunnel.rx_invalid');
      }
      case 'u_bad_cookie':
        sendUdp(Buffer.concat([udpHdr(cfg.traffic.sid), wrongCookie(cfg.traffic.cookie), sublayer(rand() < 0.5, ri(0, 0xffffff)), frame(ri(0, 1400))]));
        return void bump(expect, 'traffic.rx_cookie_discards');
      case 'u_no_session':
        sendUdp(Buffer.concat([udpHdr(unknownSid()), rbytes(ri(8, 12)), frame(ri(6, 1400))]));
        return void bump(expect, 'udpTunnel.rx_no_session');
      case 'u_bad_version': {
        let ver = ri(0, 15);
        while (ver === 2 || ver === 3) ver = ri(0, 15);
        sendUdp(Buffer.concat([udpHdr(cfg.traffic.sid, ver), cookieOf(cfg.traffic.cookie), sublayer(false, 0), frame(ri(14, 200))]));
        return void bump(expect, 'udpTunnel.rx_invalid');
      }
      case 'u_tbit':
        sendUdp(Buffer.concat([udpHdr(cfg.traffic.sid, 3, true), cookieOf(cfg.traffic.cookie), sublayer(false, 0), frame(ri(0, 200))]));
        return void bump(expect, 'udpTunnel.rx_control');
      case 'u_seq_abuse': {
        // Right cookie, absurd sequence numbers (or none: the victim has seq both).
        // Each one is either delivered (rx_packets) or discarded (rx_errors).
        const s = rand() < 0.85;
        const ns = rand() < 0.3 ? ri(0x7ffff0, 0xffffff) : ri(0, 0xffffff);
        sendUdp(Buffer.concat([udpHdr(cfg.victim.sid), cookieOf(cfg.victim.cookie), sublayer(s, ns), frame(ri(14, 300))]));
        return void bump(expect, 'victim.rx_packets+rx_errors');
      }
      case 'u_oversize_nosess':
        sendUdp(Buffer.concat([udpHdr(unknownSid()), frame(ri(1600, 65000))]));
        return void bump(expect, 'udpTunnel.rx_no_session');
      case 'u_oversize_frame':
        // A frame far larger than the session interface's MTU (sink: no cookie, l2spec none).
        sendUdp(Buffer.concat([udpHdr(cfg.sink.sid), frame(ri(1500, 65000))]));
        return void bump(expect, 'sink.rx_packets');
      case 'u_tiny_frame':
        // Valid header, inner frame shorter than an Ethernet header: counted, then dropped.
        sendUdp(Buffer.concat([udpHdr(cfg.sink.sid), frame(ri(6, 13))]));
        bump(expect, 'sink.rx_packets');
        return void bump(expect, 'sink.rx_dev_drops');
      case 'i_random': {
        for (;;) {
          const b = rbytes(ri(0, 300));
          if (b.length >= 4 && known.has(b.readUInt32BE(0))) continue;
          sendIp(IPPROTO_L2TP, cfg.src, b);
          if (b.length >= 4 && b.readUInt32BE(0) === 0) return void bump(expect, 'orphan.rx_control');
          if (b.length < 4) return void bump(expect, 'orphan.rx_short'); // shorter than a session id
          return void bump(expect, 'orphan.rx_no_session');
        }
      }
      case 'i_zero':
        sendIp(IPPROTO_L2TP, cfg.src, Buffer.alloc(0));
        return void bump(expect, 'orphan.rx_short');
      case 'i_control':
        sendIp(IPPROTO_L2TP, cfg.src, Buffer.concat([Buffer.alloc(4), rbytes(ri(0, 200))]));
        return void bump(expect, 'orphan.rx_control');
      case 'i_no_session': {
        const b = Buffer.concat([Buffer.alloc(4), rbytes(ri(0, 1400))]);
        b.writeUInt32BE(unknownSid(), 0);
        sendIp(IPPROTO_L2TP, cfg.src, b);
        return void bump(expect, 'orphan.rx_no_session');
      }
      case 'i_spoofed_src': {
        // Right session id and cookie, wrong source: the raw-IP source filter drops it.
        const b = Buffer.concat([Buffer.alloc(4), cookieOf(cfg.ipSession.cookie), sublayer(false, 0), frame(ri(14, 200))]);
        b.writeUInt32BE(cfg.ipSession.sid, 0);
        sendIp(IPPROTO_L2TP, cfg.foreignSrc, b);
        return void bump(expect, 'orphan.rx_no_session');
      }
      case 'i_trunc': {
        const full = Buffer.concat([Buffer.alloc(4), cookieOf(cfg.ipSession.cookie), sublayer(false, 0)]);
        full.writeUInt32BE(cfg.ipSession.sid, 0);
        sendIp(IPPROTO_L2TP, cfg.src, full.subarray(0, ri(4, full.length - 1)));
        return void bump(expect, 'ipTunnel.rx_short');
      }
      case 'i_bad_cookie': {
        const b = Buffer.concat([Buffer.alloc(4), wrongCookie(cfg.ipSession.cookie), sublayer(rand() < 0.5, ri(0, 0xffffff)), frame(ri(0, 1400))]);
        b.writeUInt32BE(cfg.ipSession.sid, 0);
        sendIp(IPPROTO_L2TP, cfg.src, b);
        return void bump(expect, 'ipSession.rx_cookie_discards');
      }
      case 'i_options': {
        // IHL > 5: the receiver must skip IHL*4 bytes, not 20.
        const b = Buffer.concat([Buffer.alloc(4), rbytes(ri(0, 200))]);
        b.writeUInt32BE(unknownSid(), 0);
        sendIp(IPPROTO_L2TP, cfg.src, b, ri(6, 15));
        return void bump(expect, 'orphan.rx_no_session');
      }
      case 'i_oversize': {
        const b = Buffer.concat([Buffer.alloc(4), frame(ri(1600, 65000))]);
        b.writeUInt32BE(unknownSid(), 0);
        sendIp(IPPROTO_L2TP, cfg.src, b);
        return void bump(expect, 'orphan.rx_no_session');
      }
      case 'j_random': {
        // IPv6 raw sockets deliver no IP header: < 4 bytes is decapIp's "short".
        for (;;) {
          const b = rbytes(ri(0, 300));
          if (b.length >= 4 && known.has(b.readUInt32BE(0))) continue;
          sendIp6(cfg.ip6!.src, b);
          if (b.length < 4) return void bump(expect, 'orphan.rx_short');
          if (b.readUInt32BE(0) === 0) return void bump(expect, 'orphan.rx_control');
          return void bump(expect, 'orphan.rx_no_session');
        }
      }
      case 'j_zero':
        sendIp6(cfg.ip6!.src, Buffer.alloc(0));
        return void bump(expect, 'orphan.rx_short');
      case 'j_control':
        sendIp6(cfg.ip6!.src, Buffer.concat([Buffer.alloc(4), rbytes(ri(0, 200))]));
        return void bump(expect, 'orphan.rx_control');
      case 'j_no_session': {
        const b = Buffer.concat([Buffer.alloc(4), rbytes(ri(0, 1400))]);
        b.writeUInt32BE(unknownSid(), 0);
        sendIp6(cfg.ip6!.src, b);
        return void bump(expect, 'orphan.rx_no_session');
      }
      case 'j_spoofed_src': {
        const ss = cfg.ip6!.session;
        const b = Buffer.concat([Buffer.alloc(4), cookieOf(ss.cookie), sublayer(false, 0), frame(ri(14, 200))]);
        b.writeUInt32BE(ss.sid, 0);
        sendIp6(cfg.ip6!.foreignSrc, b);
        return void bump(expect, 'orphan.rx_no_session');
      }
      case 'j_trunc': {
        const ss = cfg.ip6!.session;
        const full = Buffer.concat([Buffer.alloc(4), cookieOf(ss.cookie), sublayer(false, 0)]);
        full.writeUInt32BE(ss.sid, 0);
        sendIp6(cfg.ip6!.src, full.subarray(0, ri(4, full.length - 1)));
        return void bump(expect, 'ip6Tunnel.rx_short');
      }
      case 'j_bad_cookie': {
        const ss = cfg.ip6!.session;
        const b = Buffer.concat([Buffer.alloc(4), wrongCookie(ss.cookie), sublayer(rand() < 0.5, ri(0, 0xffffff)), frame(ri(0, 1300))]);
        b.writeUInt32BE(ss.sid, 0);
        sendIp6(cfg.ip6!.src, b);
        return void bump(expect, 'ip6Session.rx_cookie_discards');
      }
    }
  };

  // Every kind at least once, then a paced random mix.
  for (const [k] of weights) one(k);
  const start = Date.now();
  const end = start + cfg.seconds * 1000;
  const tick = () => {
    const now = Date.now();
    if (now >= end) {
      process.stdout.write(JSON.stringify({ sent, expect, packets, fragments, errors }) + '\n');
      return;
    }
    const due = Math.floor(((now - start) / 1000) * cfg.rate) + weights.length;
    while (packets < due) one(pick());
    setTimeout(tick, 10);
  };
  tick();
}

if (process.argv[2]) main(JSON.parse(process.argv[2]) as HostileConfig);
