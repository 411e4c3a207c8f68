/**
 * Receive path: packet → tunnel/session lookup → cookie check → L2-specific
 * sublayer → sequence handling → frame, in the kernel's order (docs/protocol.md
 * §2.2–2.8: l2tp_udp_recv_core, l2tp_ip_recv, l2tp_recv_common,
 * l2tp_recv_data_seq, l2tp_recv_dequeue, l2tp_eth_dev_recv).
 *
 * Counters: exactly the kernel's, plus ours for drops the kernel does not
 * count (RX_NO_SESSION, RX_CONTROL, RX_SHORT in the tunnel slot, or in
 * `table.orphan` when IP encap has no tunnel context yet; RX_DEV_DROPS in
 * the session slot for frames shorter than an Ethernet header).
 *
 * Hot path: no allocation, no throwing, indexed loops only. Frames are handed
 * to `sink.deliver` synchronously and zero-copy, except in reorder mode when
 * a packet must wait: then it is copied into the session's preallocated
 * queue and delivered from there later.
 */
import type { Session } from './session.js';
import type { Table } from './table.js';
import type { Tunnel } from './tunnel.js';
import {
  RECV_SEQ,
  RX_BYTES,
  RX_COOKIE_DISCARDS,
  RX_ERRORS,
  RX_OOS_PACKETS,
  RX_PACKETS,
  RX_SEQ_DISCARDS,
  SEND_SEQ,
  RX_CONTROL as C_RX_CONTROL,
  RX_DEV_DROPS as C_RX_DEV_DROPS,
  RX_INVALID as C_RX_INVALID,
  RX_NO_SESSION as C_RX_NO_SESSION,
  RX_SHORT as C_RX_SHORT,
  NR_SHADOW,
} from './stats.js';
import { NR_OOS_COUNT_MAX, SEQ_MASK, SEQ_WINDOW } from './seq.js';
import { L2TP_IP_HDR_LEN, L2TP_UDP_HDR_LEN, u32At } from '../wire/l2tpv3.js';
import { L2SPEC_LEN, sublayerSeqAt, sublayerSequencedAt } from '../wire/sublayer.js';

import {
  RX_BAD_COOKIE,
  RX_BAD_VERSION,
  RX_CONTROL,
  RX_DEV_DROP,
  RX_INVALID,
  RX_NO_SESSION,
  RX_OK,
  RX_OUT_OF_WINDOW,
  RX_QUEUED,
  RX_QUEUE_FULL,
  RX_SEQ_DISCARD,
  RX_SEQ_REQUIRED,
  RX_SHORT,
  type RxResult,
} from './rx-result.js';
export * from './rx-result.js';

/** Receives frames. `buf[off, off+len)` is valid only during the call (zero-copy). */
export interface RxSink {
  deliver(s: Session, buf: Buffer, off: number, len: number): void;
}
export type FrameSink = RxSink;

/** Frames shorter than an Ethernet header are dropped by l2tp_eth (after counting). */
const ETH_HLEN = 14;
/** Linux drops UDP L2TP payloads shorter than this before lookup. */
const UDP_MIN_LEN = 14;
/** Expiry when no reorder timeout is set (the kernel's HZ). */
const DEFAULT_EXPIRY_MS = 1000;

/**
 * Decapsulate one L2TP-over-UDP packet that arrived on `tunnel`'s socket.
 * buf[off, off+len) is the UDP payload; nothing outside it is read.
 */
export function decapUdp(table: Table, tunnel: Tunnel, buf: Buffer, off: number, len: number, nowMs: number, sink: RxSink): RxResult {
  if (len < UDP_MIN_LEN) {
    tunnel.stats[tunnel.base + C_RX_SHORT]++;
    return RX_SHORT;
  }
  // T bit: control, handed to the socket before any version check (§2.2 step 4)
  if ((buf[off] & 0x80) !== 0) {
    tunnel.stats[tunnel.base + C_RX_CONTROL]++;
    return RX_CONTROL;
  }
  const ver = buf[off + 1] & 0x0f;
  if (ver === 2) {
    // parsed as L2TPv2: an L2TPv3-only namespace has no v2 session
    tunnel.stats[tunnel.base + C_RX_NO_SESSION]++;
    return RX_NO_SESSION;
  }
  const sid = ((buf[off + 4] << 24) | (buf[off + 5] << 16) | (buf[off + 6] << 8) | buf[off + 7]) >>> 0;
  const s = table.lookupUdp(tunnel, sid);
  if (s === undefined) {
    tunnel.stats[tunnel.base + C_RX_NO_SESSION]++;
    return RX_NO_SESSION;
  }
  const t = s.tunnel;
  if (ver !== 3) {
    t.stats[t.base + C_RX_INVALID]++;
    return RX_BAD_VERSION;
  }
  // the session may belong to an IP tunnel (ids are namespace-wide): lengths for this UDP header
  if (len < L2TP_UDP_HDR_LEN + s.rxCookieLen + (s.rxL2specOff >= 0 ? L2SPEC_LEN : 0)) {
    t.stats[t.base + C_RX_INVALID]++;
    return RX_INVALID;
  }
  return recvCommon(s, buf, off, off + L2TP_UDP_HDR_LEN, len, nowMs, sink);
}

/**
 * Decapsulate one L2TP-over-IP packet. buf[off, off+len) is the IP payload
 * (after the IPv4 header, see wire/ip.ts; IPv6 raw sockets deliver no header).
 * The outer addresses are not checked (like the kernel).
 */
export function decapIp(table: Table, buf: Buffer, off: number, len: number, nowMs: number, sink: RxSink): RxResult {
  const o = table.orphan;
  if (len < 4) {
    o[C_RX_SHORT]++;
    return RX_SHORT;
  }
  const sid = ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
  if (sid === 0) {
    o[C_RX_CONTROL]++;
    return RX_CONTROL;
  }
  const s = table.lookupIp(sid);
  if (s === undefined) {
    o[C_RX_NO_SESSION]++;
    return RX_NO_SESSION;
  }
  if (len < s.rxHdrLen) {
    const t = s.tunnel;
    t.stats[t.base + C_RX_SHORT]++;
    return RX_SHORT;
  }
  return recvCommon(s, buf, off, off + L2TP_IP_HDR_LEN, len, nowMs, sink);
}

/**
 * l2tp_recv_common: `ptr` is just after the session id, `len` the L2TP-level
 * length from `pktOff`. Caller checked that cookie and sublayer fit.
 */
function recvCommon(s: Session, buf: Buffer, pktOff: number, ptr: number, len: number, nowMs: number, sink: RxSink): RxResult {
  const st = s.stats;
  const b = s.base;
  // 1. cookie (RFC 3931 §4.5: checked after the session lookup)
  const cl = s.rxCookieLen;
  if (cl > 0) {
    let same: boolean;
    if (cl === 4 || cl === 8) {
      same = u32At(buf, ptr) === s.peerCookieW0;
      if (same && cl === 8) same = u32At(buf, ptr + 4) === s.peerCookieW1;
    } else {
      same = true;
      const pc = s.peerCookie;
      for (let i = 0; i < cl; i++) if (buf[ptr + i] !== pc[i]) same = false;
    }
    if (!same) {
      st[b + RX_COOKIE_DISCARDS]++;
      st[b + RX_ERRORS]++;
      return RX_BAD_COOKIE;
    }
    ptr += cl;
  }
  // 2. default sublayer: only S and the low 24 bits are read
  let hasSeq = false;
  let ns = 0;
  if (s.rxL2specOff >= 0) {
    if (sublayerSequencedAt(buf, ptr)) {
      hasSeq = true;
      ns = sublayerSeqAt(buf, ptr);
    }
    ptr += L2SPEC_LEN;
  }
  // 3. sequence policy, LAC (lns_mode = 0): follow the peer (§2.5)
  if (hasSeq) {
    if (st[b + SEND_SEQ] === 0) st[b + SEND_SEQ] = 1;
  } else {
    if (st[b + RECV_SEQ] !== 0) {
      st[b + RX_SEQ_DISCARDS]++;
      st[b + RX_ERRORS]++;
      return RX_SEQ_REQUIRED;
    }
    if (st[b + SEND_SEQ] !== 0) st[b + SEND_SEQ] = 0;
  }
  const frameLen = pktOff + len - ptr;
  const q = s.queue;
  // 5. l2tp_recv_data_seq
  if (hasSeq) {
    if (((ns - s.nr) & SEQ_MASK) >= SEQ_WINDOW) {
      st[b + RX_ERRORS]++;
      return RX_OUT_OF_WINDOW;
    }
    if (s.reorderTimeoutMs > 0) {
      if (q.count === 0) {
        // it would be the only queued packet: deliver in place if in order
        if (s.reorderSkip !== 0) {
          s.reorderSkip = 0;
          s.nr = ns;
        }
        if (ns === s.nr) return deliver(s, buf, ptr, frameLen, len, true, sink);
      }
      return enqueue(s, buf, ptr, frameLen, len, true, ns, nowMs, sink);
    }
    if (ns !== s.nr) {
      if (ns === ((s.nrOos + 1) & SEQ_MASK)) s.nrOosCount++;
      else s.nrOosCount = 0;
      s.nrOos = ns;
      if (s.nrOosCount > NR_OOS_COUNT_MAX) s.reorderSkip = 1;
      if (s.reorderSkip === 0) {
        st[b + RX_SEQ_DISCARDS]++;
        st[b + RX_ERRORS]++;
        return RX_SEQ_DISCARD;
      }
    }
    // Without reordering the kernel's queue is empty here and this packet
    // is released at once (l2tp_recv_dequeue): resync if asked, deliver.
    if (s.reorderSkip !== 0) {
      s.reorderSkip = 0;
      s.nr = ns;
    }
    return deliver(s, buf, ptr, frameLen, len, true, sink);
  }
  // unsequenced: queued at the tail, so it never overtakes queued packets
  if (q.count > 0) return enqueue(s, buf, ptr, frameLen, len, false, 0, nowMs, sink);
  return deliver(s, buf, ptr, frameLen, len, false, sink);
}

/** l2tp_recv_dequeue_skb + l2tp_eth_dev_recv for one released packet. */
function deliver(s: Session, buf: Buffer, frameOff: number, frameLen: number, pktLen: number, hasSeq: boolean, sink: RxSink): RxResult {
  const t = s.tunnel;
  const ts = t.stats;
  const tb = t.base;
  ts[tb + RX_PACKETS]++;
  ts[tb + RX_BYTES] += pktLen;
  const st = s.stats;
  const b = s.base;
  st[b + RX_PACKETS]++;
  st[b + RX_BYTES] += pktLen;
  if (hasSeq) {
    s.nr = (s.nr + 1) & SEQ_MASK;
    st[b + NR_SHADOW] = s.nr;
  }
  if (frameLen < ETH_HLEN) {
    st[b + C_RX_DEV_DROPS]++;
    return RX_DEV_DROP;
  }
  sink.deliver(s, buf, frameOff, frameLen);
  return RX_OK;
}

/** Reorder mode: copy into the queue in ns order (l2tp_recv_queue_skb), then release what can go. */
function enqueue(s: Session, buf: Buffer, frameOff: number, frameLen: number, pktLen: number, hasSeq: boolean, ns: number, nowMs: number, sink: RxSink): RxResult {
  const q = s.queue;
  const st = s.stats;
  if (!q.canQueue(frameLen)) {
    st[s.base + RX_ERRORS]++;
    return RX_QUEUE_FULL;
  }
  const pos = q.insertPos(hasSeq, ns);
  if (pos < q.count) st[s.base + RX_OOS_PACKETS]++;
  const timeout = s.reorderTimeoutMs > 0 ? s.reorderTimeoutMs : DEFAULT_EXPIRY_MS;
  q.insert(pos, buf, frameOff, frameLen, hasSeq, ns, pktLen, nowMs + timeout);
  dequeue(s, nowMs, sink);
  return RX_QUEUED;
}

/**
 * l2tp_recv_dequeue: from the head, drop expired packets (now > expires:
 * rx_seq_discards + rx_errors, resync), release in-order ones, stop at the
 * first sequenced packet that is not the expected one. Returns how many
 * packets were released.
 */
function dequeue(s: Session, nowMs: number, sink: RxSink): number {
  const q = s.queue;
  const st = s.stats;
  const b = s.base;
  let released = 0;
  while (q.count > 0) {
    const slot = q.slotAt(0);
    if (nowMs > q.expires[slot]) {
      st[b + RX_SEQ_DISCARDS]++;
      st[b + RX_ERRORS]++;
      s.reorderSkip = 1;
      q.shift();
      continue;
    }
    const seq = q.hasSeq[slot] !== 0;
    if (seq) {
      if (s.reorderSkip !== 0) {
        s.reorderSkip = 0;
        s.nr = q.ns[slot];
      }
      if (q.ns[slot] !== s.nr) break;
    }
    q.shift();
    // the slot's bytes stay valid until the next insert
    deliver(s, q.data, q.offsetOf(slot), q.frameLen[slot], q.pktLen[slot], seq, sink);
    released++;
  }
  return released;
}

/**
 * Reorder mode: run the release loop without a new packet (drop expired
 * packets, release what becomes deliverable). The kernel has no timer and
 * only does this when a packet arrives, so call it only if you want queued
 * packets to move without traffic. Returns how many packets were released.
 */
export function expire(s: Session, nowMs: number, sink: RxSink): number {
  if (s.queue.count === 0) return 0;
  return dequeue(s, nowMs, sink);
}

/** On session delete: drop every queued packet (session.ts; re-exported for callers of the receive path). */
export { purge } from './session.js';
