/**
 * A dataplane worker thread (see dataplane.ts). Runs one blocking loop and
 * never returns to its event loop while the daemon runs:
 *
 *   epoll_wait → for each ready fd, one bounded batch:
 *     tx: read frames from the session TAP at HEADROOM, write the L2TP header
 *         in front of each (engine encap), sendmmsg them on the tunnel socket;
 *     rx: recvmmsg from a tunnel socket, engine decap, write each frame to
 *         its session TAP.
 *
 * Commands arrive on a MessagePort (pulled with receiveMessageOnPort) after a
 * poke on the eventfd registered in the same epoll set.
 *
 * Everything here is owned by this one thread. From epoll_wait returning to
 * the last write: no allocation, no throwing, indexed loops (STYLE.md §5).
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import type { SessionConfig, TunnelConfig } from '../../engine/config.js';
import { countTx, countTxError, encap } from '../../engine/encap.js';
import { decapIp, decapUdp, expire, purge, type FrameSink } from '../../engine/decap.js';
import { HEADROOM } from '../../engine/layout.js';
import { Session } from '../../engine/session.js';
import { RX_DEV_DROPS, RX_NO_SESSION, SLOT_SIZE } from '../../engine/stats.js';
import { Table } from '../../engine/table.js';
import { Tunnel } from '../../engine/tunnel.js';
import { Batch, readFrames, recvBatch, sendBatch, writeFrame } from './batch.js';
import { EPOLLERR, EPOLLHUP, EPOLLIN, EpollSet, eventfdDrain } from './epoll.js';
import { sockaddrFor, waitWritable } from './udp.js';
import type { WorkerCommand, WorkerInit } from './worker-protocol.js';
// Everyday-use hooks (capture, impairment): logic in their own modules.
import { CaptureRing, DIR_RX, DIR_TX, ENCAP_IP, ENCAP_UDP, captureOne } from '../capture-ring.js';
import { clearImpair, impairFlushAll, impairInit, impairTake, impairWaitMs, impairedSessions, setImpair } from '../impair.js';
// Offload path (TAPs with a virtio_net_hdr: TSO segmentation on tx, GRO coalescing on rx).
import { GRO_FLOWS, isVnet, markVnet, TxOffload } from '../offload/pump.js';
import { Coalescer } from '../offload/gro.js';
import { IFF_VNET_HDR, tapInfo } from './tap.js';

const init = workerData as WorkerInit & { port: MessagePort };
const port = init.port;
const stats = new Float64Array(init.stats);
const role = init.role;

/** Frames per batch: one recvmmsg/sendmmsg call moves up to this many. */
const BATCH = 64;
/** Batches served per ready fd before looking at the others (fairness). */
const ROUNDS = 4;
/** Slot size: headroom + the largest frame a TAP with MTU 65535 can hand us. */
const SLOT = HEADROOM + 65535 + 14 + 4;
const CTRL = 0xffffffff;

// rx: GRO_FLOWS extra slots hold the offload path's coalescing flows (same slab: copyWithin)
// rx: receives read ancillary data, for UDP GRO (a run of datagrams in one slot, see pumpUdp)
const batch = new Batch({ n: BATCH + (role === 'rx' ? GRO_FLOWS : 0), slotSize: SLOT, cmsg: role === 'rx' });
const slab = batch.slab;
/** Slot stride in `slab`: slot j's data starts at j * SS + batch.off[j]. */
const SS = batch.slotSize;
const table = new Table(stats.subarray(init.orphanBase, init.orphanBase + SLOT_SIZE));
const ep = new EpollSet(128);
ep.add(init.evfd, EPOLLIN, CTRL);
/** Capture: ring.ctl[0] is read once per batch; non-zero while someone captures. */
const cap = new CaptureRing(init.capture, init.capture ? undefined : 8);
const capOn = cap.ctl;
impairInit(batch, sendBatch as never);
/** Offload path: created in the worker that needs it (tx: segmenting; rx: coalescing). */
const txo = role === 'tx' ? new TxOffload(offloadHook) : null;
// Impairment releases go through the offload output batch, which is idle between sends, so
// that they never overwrite frames of the input batch an offload pump is still cutting up.
if (txo !== null) impairInit(txo.out, sendBatch as never);
const gro = role === 'rx' ? new Coalescer(writeFrame, stats, RX_DEV_DROPS, GRO_FLOWS, slab, BATCH * SS, SS) : null;

/** What an epoll data word points at. Index = data word. */
interface TxEntry {
  kind: 0; // session TAP (tx role)
  s: Session;
}
interface RxUdpEntry {
  kind: 1; // UDP tunnel socket (rx role)
  t: Tunnel;
}
interface RxRawEntry {
  kind: 2; // raw IP socket (rx role), shared by every IP tunnel on one local address
  fd: number;
  family: 4 | 6;
  refs: number;
}
type Entry = TxEntry | RxUdpEntry | RxRawEntry;

const entries: Array<Entry | null> = [];
const freeIdx: number[] = [];
const rawByFd = new Map<number, number>(); // raw socket fd → entry index
let reorderSessions = 0;

function addEntry(e: Entry, fd: number): number {
  const i = freeIdx.length ? freeIdx.pop()! : entries.length;
  entries[i] = e;
  ep.add(fd, EPOLLIN, i);
  return i;
}

function dropEntry(i: number, fd: number): void {
  ep.del(fd);
  entries[i] = null;
  freeIdx.push(i);
}

/** Per-tunnel data the hot path needs, kept on tunnel.ctx. */
interface TunnelCtx {
  fd: number; // socket to send on
  dest: number; // raw IP: index of the destination sockaddr in the batch; -1 for connected UDP
  remote: Buffer; // remote address bytes (4 or 16) for the raw-IP source check
  entry: number; // rx role, UDP: epoll entry index
}

function onCommand(m: WorkerCommand): string | undefined {
  switch (m.op) {
    case 'addTunnel': {
      const t = new Tunnel(m.cfg as TunnelConfig, stats, m.base);
      const ctx: TunnelCtx = { fd: m.fd, dest: -1, remote: addrBytes(m.cfg), entry: -1 };
      t.ctx = ctx;
      table.addTunnel(t);
      if (m.cfg.encap === 'ip') ctx.dest = batch.addDest(sockaddrFor(m.cfg.family, m.cfg.remote, 0));
      if (m.cfg.encap === 'ip' && txo !== null) txo.mirrorDest(sockaddrFor(m.cfg.family, m.cfg.remote, 0), ctx.dest); // offload path
      if (m.cfg.encap === 'udp' && txo !== null) txo.setGso(m.fd, m.cfg.family === 4 ? m.cfg.udpCsum : m.cfg.udp6CsumTx); // offload path: UDP GSO
      if (role === 'rx') {
        if (m.cfg.encap === 'udp') {
          ctx.entry = addEntry({ kind: 1, t }, m.fd);
        } else {
          const i = rawByFd.get(m.fd);
          if (i !== undefined) (entries[i] as RxRawEntry).refs++;
          else rawByFd.set(m.fd, addEntry({ kind: 2, fd: m.fd, family: m.cfg.family, refs: 1 }, m.fd));
        }
      }
      return undefined;
    }
    case 'delTunnel': {
      const t = table.getTunnel(m.tunnelId);
      if (!t) return undefined;
      const ctx = t.ctx as TunnelCtx;
      for (const s of table.removeTunnel(m.tunnelId)) forgetSession(s);
      if (role === 'rx') {
        if (t.cfg.encap === 'udp') dropEntry(ctx.entry, ctx.fd);
        else {
          const i = rawByFd.get(ctx.fd);
          if (i !== undefined && --(entries[i] as RxRawEntry).refs === 0) {
            rawByFd.delete(ctx.fd);
            dropEntry(i, ctx.fd);
          }
        }
      }
      if (ctx.dest >= 0) batch.freeDest(ctx.dest);
      if (ctx.dest >= 0 && txo !== null) txo.mirrorFreeDest(ctx.dest); // offload path
      if (txo !== null && t.cfg.encap === 'udp') txo.setGso(ctx.fd, false); // offload path
      return undefined;
    }
    case 'addSession': {
      const t = table.getTunnel(m.cfg.tunnelId);
      if (!t) return 'no such tunnel';
      const s = new Session(m.cfg as SessionConfig, t, stats, m.base);
      s.dev = m.fd;
      markVnet(m.fd, tapHasVnet(m.fd)); // offload path
      table.addSession(s);
      if (role === 'tx') s.ctx = addEntry({ kind: 0, s }, m.fd);
      if (m.cfg.reorderTimeoutMs > 0) reorderSessions++;
      return undefined;
    }
    case 'delSession': {
      const s = table.removeSession(m.tunnelId, m.sessionId);
      if (s) forgetSession(s);
      return undefined;
    }
    case 'impair': {
      const s = table.getSession(m.tunnelId, m.sessionId);
      if (!s) return 'no such session';
      const tc = s.tunnel.ctx as TunnelCtx;
      setImpair(s, m.cfg, tc.fd, tc.dest);
      return undefined;
    }
    case 'stop':
      running = false;
      return undefined;
  }
}

function forgetSession(s: Session): void {
  if (impairedSessions !== 0) clearImpair(s);
  if (role === 'tx') dropEntry(s.ctx as number, s.dev);
  else purge(s);
  if (s.cfg.reorderTimeoutMs > 0) reorderSessions--;
  s.dev = -1;
}

function addrBytes(cfg: TunnelConfig): Buffer {
  return sockaddrFor(cfg.family, cfg.remote, 0).subarray(cfg.family === 4 ? 4 : 8, cfg.family === 4 ? 8 : 24);
}

function drainCommands(): void {
  if (gro !== null && gro.held !== 0) gro.flush(); // offload path: before any fd can go away
  eventfdDrain(init.evfd);
  for (;;) {
    const r = receiveMessageOnPort(port);
    if (!r) return;
    const m = r.message as WorkerCommand;
    let error: string | undefined;
    try {
      error = onCommand(m);
    } catch (e) {
      error = (e as Error).message;
    }
    port.postMessage(error ? { seq: m.seq, error } : { seq: m.seq });
  }
}

// ---------------------------------------------------------------- tx

function pumpTap(s: Session): void {
  if (isVnet(s.dev)) return pumpTapOffload(s); // offload path
  const ctx = s.tunnel.ctx as TunnelCtx;
  for (let round = 0; round < ROUNDS; round++) {
    const n = readFrames(s.dev, batch, BATCH, HEADROOM);
    if (n <= 0) return;
    for (let j = 0; j < n; j++) {
      const at = j * SS + batch.off[j];
      const hdr = at - encap(s, slab, at, batch.len[j]);
      batch.off[j] -= hdr;
      batch.len[j] += hdr;
    }
    // ---- capture / impairment hooks (src/io/capture-ring.ts, src/io/impair.ts)
    if (capOn[0] !== 0) {
      const now = performance.timeOrigin + performance.now();
      const enc = s.txUdp ? ENCAP_UDP : ENCAP_IP;
      for (let j = 0; j < n; j++) captureOne(cap, slab, j * SS + batch.off[j], batch.len[j], DIR_TX, enc, s.cfg.tunnelId, s.cfg.sessionId, now);
    }
    if (impairedSessions !== 0 && impairTake(s, batch, n, Date.now(), countTx)) {
      if (n < BATCH) return;
      continue;
    }
    // ---- end hooks
    let done = 0;
    let tries = 0;
    while (done < n) {
      const r = sendBatch(ctx.fd, batch, done, n - done, ctx.dest);
      if (r > 0) {
        for (let j = done; j < done + r; j++) countTx(s, batch.len[j]);
        done += r;
        tries = 0;
        continue;
      }
      // Socket buffer full (-EAGAIN/-ENOBUFS): wait briefly for room, like a
      // blocking kernel send; other errors (no route, ...) drop one packet.
      if ((r === -11 || r === -105) && tries++ < 50) {
        waitWritable(ctx.fd, 2);
        continue;
      }
      countTxError(s);
      done++;
    }
    if (n < BATCH) return;
  }
}

// ---------------------------------------------------------------- rx

class TapSink implements FrameSink {
  deliver(s: Session, buf: Buffer, off: number, len: number): void {
    if (gro !== null && isVnet(s.dev)) return gro.add(s.dev, s.base, buf, off, len, buf === slab); // offload path
    if (s.dev < 0 || writeFrame(s.dev, buf, off, len) < 0) stats[s.base + RX_DEV_DROPS]++;
  }
}
const sink = new TapSink();

function pumpUdp(t: Tunnel, fd: number): void {
  for (let round = 0; round < ROUNDS; round++) {
    const n = recvBatch(fd, batch, BATCH, HEADROOM);
    if (n <= 0) return;
    const now = Date.now();
    for (let j = 0; j < n; j++) {
      const at = j * SS + batch.off[j];
      const len = batch.len[j];
      // UDP GRO (socket option set in offload mode): the slot holds datagrams of `seg` bytes
      // each, the last possibly shorter; every one is an L2TP packet of its own.
      const seg = batch.gso[j];
      if (seg === 0 || seg >= len) {
        rxUdp(t, at, len, now);
        continue;
      }
      for (let o = 0; o < len; o += seg) rxUdp(t, at + o, len - o < seg ? len - o : seg, now);
    }
    if (gro !== null && gro.held !== 0) gro.detach(); // offload path: the slab is reused next; flushed after the wake-up
    if (n < BATCH) return;
  }
}

function pumpRaw(e: RxRawEntry): void {
  for (let round = 0; round < ROUNDS; round++) {
    const n = recvBatch(e.fd, batch, BATCH, HEADROOM);
    if (n <= 0) return;
    const now = Date.now();
    for (let j = 0; j < n; j++) {
      let off = j * SS + batch.off[j];
      let len = batch.len[j];
      let src: Buffer;
      let srcOff: number;
      if (e.family === 4) {
        // IPv4 raw sockets deliver the IP header: skip IHL*4 (do not assume 20).
        const ihl = (slab[off] & 0x0f) << 2;
        if (len < ihl || ihl < 20) {
          table.orphan[RX_NO_SESSION]++;
          continue;
        }
        // A payload shorter than a session id (even none) is counted by decapIp as rx_short.
        src = slab;
        srcOff = off + 12;
        off += ihl;
        len -= ihl;
      } else {
        src = batch.srcAddr;
        srcOff = batch.srcAddrOff(j);
      }
      if (capOn[0] !== 0) captureOne(cap, slab, off, len, DIR_RX, ENCAP_IP, 0, len >= 4 ? slab.readUInt32BE(off) : 0, performance.timeOrigin + performance.now()); // capture hook
      // IP encap has no tunnel context on the wire: the session id names the
      // session globally. Unlike the kernel, we also require the packet to come
      // from that session's tunnel remote (invisible to a correct peer, SPEC §6.4).
      if (len >= 4) {
        const sid = slab.readUInt32BE(off);
        if (sid !== 0) {
          const s = table.lookupIp(sid);
          if (s !== undefined) {
            const remote = (s.tunnel.ctx as TunnelCtx).remote;
            let same = true;
            for (let k = 0; k < remote.length; k++) {
              if (src[srcOff + k] !== remote[k]) {
                same = false;
                break;
              }
            }
            if (!same) {
              table.orphan[RX_NO_SESSION]++;
              continue;
            }
          }
        }
      }
      decapIp(table, slab, off, len, now, sink);
    }
    if (gro !== null && gro.held !== 0) gro.detach(); // offload path: the slab is reused next; flushed after the wake-up
    if (n < BATCH) return;
  }
}

/** One received UDP payload (an L2TP packet) at slab[off, off+len): capture hook, then decap. */
function rxUdp(t: Tunnel, off: number, len: number, now: number): void {
  if (capOn[0] !== 0) captureOne(cap, slab, off, len, DIR_RX, ENCAP_UDP, t.cfg.tunnelId, len >= 8 ? slab.readUInt32BE(off + 4) : 0, performance.timeOrigin + performance.now());
  decapUdp(table, t, slab, off, len, now, sink);
}

function expireAll(now: number): void {
  for (const s of table.sessions()) if (s.cfg.reorderTimeoutMs > 0) expire(s, now, sink);
}

// ---------------------------------------------------------------- offload path

/** True when the TAP fd was opened with IFF_VNET_HDR (dataplane.ts offload mode). Cold path. */
function tapHasVnet(fd: number): boolean {
  try {
    return (tapInfo(fd).flags & IFF_VNET_HDR) !== 0;
  } catch {
    return false;
  }
}

/** tx, TAP with a virtio_net_hdr: read (super-)frames, segment, encap, sendmmsg (offload/pump.ts). */
function pumpTapOffload(s: Session): void {
  const ctx = s.tunnel.ctx as TunnelCtx;
  txo!.pump(s, ctx.fd, ctx.dest, ROUNDS);
}

/** Capture / impairment hooks for each offload output batch (packets already encapsulated). */
function offloadHook(s: Session, b: Batch, first: number, n: number): boolean {
  if (capOn[0] !== 0) {
    const now = performance.timeOrigin + performance.now();
    const enc = s.txUdp ? ENCAP_UDP : ENCAP_IP;
    const ss = b.slotSize;
    for (let j = first; j < first + n; j++) captureOne(cap, b.buf, j * ss + b.off[j], b.len[j], DIR_TX, enc, s.cfg.tunnelId, s.cfg.sessionId, now);
  }
  return impairedSessions !== 0 && impairTake(s, txo!.stage(b, first, n), n, Date.now(), countTx);
}

// ---------------------------------------------------------------- loop

let running = true;
port.postMessage({ seq: 0 }); // ready
while (running) {
  const n = ep.wait(impairedSessions !== 0 ? impairWaitMs(reorderSessions > 0 ? 20 : -1, Date.now()) : reorderSessions > 0 ? 20 : -1);
  for (let i = 0; i < n; i++) {
    const data = ep.data(i);
    if (data === CTRL) {
      drainCommands();
      continue;
    }
    const e = entries[data];
    if (!e) continue;
    const ev = ep.events(i);
    if (e.kind === 0) {
      if ((ev & (EPOLLERR | EPOLLHUP)) !== 0 && (ev & EPOLLIN) === 0) {
        // The TAP went away under us (interface deleted by hand): stop polling it.
        dropEntry(data, e.s.dev);
        continue;
      }
      pumpTap(e.s);
    } else if (e.kind === 1) pumpUdp(e.t, (e.t.ctx as TunnelCtx).fd);
    else pumpRaw(e);
  }
  if (reorderSessions > 0) expireAll(Date.now());
  if (gro !== null && gro.held !== 0) gro.flush(); // offload path: coalesced frames of this wake-up (and expire releases)
  if (impairedSessions !== 0) impairFlushAll(Date.now()); // impairment hook
}
port.close();
