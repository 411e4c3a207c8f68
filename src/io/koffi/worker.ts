/**
 * A dataplane worker thread (see dataplane.ts). Runs one blocking loop and
 * never returns to its event loop while the daemon runs:
 *
 *   epoll_wait → for each ready fd, up to ROUNDS batches through the pump
 *   (../pump.ts), which runs the whole packet path over this worker's devices
 *   (devices.ts):
 *     tx: TAP reads at HEADROOM → pump (offload, encap, capture, impair, sendmmsg, count);
 *     rx: recvmmsg from a tunnel socket → pump (capture, decap, coalesce, TAP write, count).
 *
 * Commands arrive on a MessagePort (pulled with receiveMessageOnPort) after a
 * poke on the eventfd registered in the same epoll set.
 *
 * With several worker pairs (dataplane.ts), every worker holds the whole table
 * but polls only what it owns: a tx worker the TAPs of its pair's tunnels'
 * sessions, an rx worker its pair's UDP tunnel sockets (rx worker 0: every raw
 * IP socket too).
 *
 * Everything here is owned by this one thread. From epoll_wait returning to
 * the last write: no allocation, no throwing, indexed loops (docs/ARCHITECTURE.md, Hot path rules).
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { sendsUdpChecksums, type TunnelConfig } from '../../engine/config.js';
import { HEADROOM } from '../../engine/layout.js';
import { purge, Session } from '../../engine/session.js';
import { RX_DEV_DROPS, SLOT_SIZE } from '../../engine/stats.js';
import { Table } from '../../engine/table.js';
import { Tunnel } from '../../engine/tunnel.js';
import { CAP_VNET_HDR } from '../device.js';
import { Pump, SessionPort, TunnelPort } from '../pump.js';
import { CaptureRing } from '../capture-ring.js';
import { CaptureStage } from '../stages/capture.js';
import { Impairer } from '../stages/impair.js';
import { GRO_FLOWS, OFFLOAD_SLOT_BYTES, OFFLOAD_SLOTS, TxOffload } from '../stages/offload.js';
import { Coalescer } from '../offload/gro.js';
import { Batch, recvBatch } from './batch.js';
import { writeFrame } from './tapio.js';
import { TapWriteQueue, tapNowaitIo } from './tapqueue.js';
import { RawIpSocket, TapDevice, UdpSocket } from './devices.js';
import { EPOLLERR, EPOLLHUP, EPOLLIN, EpollSet, eventfdDrain } from './epoll.js';
import { GsoSender } from './gso.js';
import { Uring } from './uring.js';
import { setThreadName } from './libc.js';
import { sockaddrFor } from './udp.js';
import type { WorkerCommand, WorkerInit } from './worker-protocol.js';

const init = workerData as WorkerInit & { port: MessagePort };
const port = init.port;
const stats = new Float64Array(init.stats);
const role = init.role;
/** This thread reads session TAPs and transmits ('tx', or 'io': one thread does both directions). */
const TX = role !== 'rx';
/** This thread reads tunnel sockets and receives ('rx', or 'io'). */
const RX = role !== 'tx';
const opts = init.options;
setThreadName(`ul2tp-${role}${init.index}`); // best effort: shows in /proc/PID/task/*/comm, top -H, perf

/** Frames per batch: one recvmmsg/sendmmsg call moves up to this many. */
const BATCH = 64;
/** Batches served per ready fd before looking at the others (fairness). */
const ROUNDS = 4;
/** Slot size: headroom + the largest frame a TAP with MTU 65535 can hand us. */
const SLOT = HEADROOM + 65535 + 14 + 4;
const CTRL = 0xffffffff;
/** epoll timeout while a session uses a reorder timeout (ms). */
const EXPIRE_INTERVAL_MS = 20;

// rx: GRO_FLOWS extra slots hold the coalescing flows (same slab: copyWithin)
// rx: receives read ancillary data, for UDP GRO (a run of datagrams in one slot)
const batch = new Batch({ n: BATCH + (RX ? GRO_FLOWS : 0), slotSize: SLOT, cmsg: RX });
const slab = batch.slab;
/**
 * Batched TAP reads (TapDevice) and writes (TapWriteQueue); null where io_uring is unavailable
 * or would not run TAP I/O inline and in order.
 */
const ring = openRing();
function openRing(): Uring | null {
  let r: Uring;
  try {
    r = new Uring(128);
  } catch {
    return null; // no io_uring here (old kernel, seccomp, locked-memory limit): plain system calls
  }
  if (tapNowaitIo(r)) return r;
  r.close();
  return null;
}
/** Slot stride in `slab`: slot j's data starts at j * SS + batch.off[j]. */
const SS = batch.slotSize;
/**
 * The table, where a UDP packet's fallback to a session of another tunnel (its id being
 * unique in the namespace, as the kernel allows) stays within this rx worker's own
 * tunnels: a session's receive state and rx counters are written by its tunnel's rx
 * worker only. A fallback across worker pairs counts as rx_no_session on the receiving
 * tunnel. With one pair every tunnel is owned, as before.
 */
class WorkerTable extends Table {
  override lookupUdp(tunnel: Tunnel, sessionId: number): Session | undefined {
    const s = super.lookupUdp(tunnel, sessionId);
    if (s === undefined || s.tunnel === tunnel || (s.tunnel.ctx as KoffiTunnelPort).own) return s;
    return undefined;
  }
}
const table = new WorkerTable(stats.subarray(init.orphanBase, init.orphanBase + SLOT_SIZE));
const ep = new EpollSet(128);
ep.add(init.evfd, EPOLLIN, CTRL);

/** tx: the offload stage's batch (only with offloads on); its destinations mirror `batch`'s. */
const offBatch = TX && opts.offload ? new Batch({ n: OFFLOAD_SLOTS, slotSize: OFFLOAD_SLOT_BYTES, checksums: true }) : null;
const gso = TX && opts.offload && opts.udpGso ? new GsoSender() : null;
const pump = new Pump(table, {
  capture: new CaptureStage(new CaptureRing(init.capture, init.capture ? undefined : 8)),
  // Impairment releases go through `batch`, idle between sends (never the offload batch,
  // whose later input frames may still wait to be cut up).
  impair: TX ? new Impairer(batch, BATCH) : null,
  offload: offBatch !== null ? new TxOffload(offBatch) : null,
  coalesce: RX && opts.offload ? new Coalescer(writeFrame, stats, RX_DEV_DROPS, GRO_FLOWS, slab, BATCH * SS, SS, new TapWriteQueue(stats, RX_DEV_DROPS, ring)) : null,
});
pump.rxSlab = slab;
const impair = pump.impair;

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

/** The tunnel's port plus what this worker needs to undo. */
class KoffiTunnelPort extends TunnelPort {
  /** rx role, UDP: epoll entry index. */
  entry = -1;
  constructor(
    sock: UdpSocket | RawIpSocket,
    remote: Buffer,
    readonly fd: number,
    /** Raw IP: shared destination index in every batch of this worker; -1 for UDP. */
    readonly dest: number,
    /** This worker reads the tunnel's socket (rx) / its sessions' TAPs (tx). */
    readonly own: boolean,
  ) {
    super(sock, remote);
  }
}

/** The session's port plus its tx epoll entry. */
class KoffiSessionPort extends SessionPort {
  entry = -1;
}

/** Registers a raw IP destination in every batch of this worker under one index (cold path). */
function addDest(sa: Uint8Array): number {
  const i = batch.addDest(sa);
  if (offBatch !== null && offBatch.addDest(sa) !== i) throw new Error('offload destination index mismatch');
  return i;
}

function freeDest(i: number): void {
  batch.freeDest(i);
  if (offBatch !== null) offBatch.freeDest(i);
}

function onCommand(m: WorkerCommand): string | undefined {
  switch (m.op) {
    case 'addTunnel': {
      const c = m.cfg;
      const t = new Tunnel(c, stats, m.base);
      const remote = c.encap === 'ip' ? addrBytes(c) : Buffer.alloc(0);
      const dest = c.encap === 'ip' ? addDest(sockaddrFor(c.family, c.remote, 0)) : -1;
      const csum = sendsUdpChecksums(c);
      const sock = c.encap === 'ip' ? new RawIpSocket(m.fd, dest) : new UdpSocket(m.fd, csum ? gso : null);
      const tp = new KoffiTunnelPort(sock, remote, m.fd, dest, m.own);
      t.ctx = tp;
      table.addTunnel(t);
      if (RX && m.own) {
        if (c.encap === 'udp') {
          tp.entry = addEntry({ kind: 1, t }, m.fd);
        } else {
          const i = rawByFd.get(m.fd);
          if (i !== undefined) (entries[i] as RxRawEntry).refs++;
          else rawByFd.set(m.fd, addEntry({ kind: 2, fd: m.fd, family: c.family, refs: 1 }, m.fd));
        }
      }
      return undefined;
    }
    case 'delTunnel': {
      const t = table.getTunnel(m.tunnelId);
      if (!t) return undefined;
      const tp = t.ctx as KoffiTunnelPort;
      for (const s of table.removeTunnel(m.tunnelId)) forgetSession(s);
      if (RX && tp.own) {
        if (t.cfg.encap === 'udp') dropEntry(tp.entry, tp.fd);
        else {
          const i = rawByFd.get(tp.fd);
          if (i !== undefined && --(entries[i] as RxRawEntry).refs === 0) {
            rawByFd.delete(tp.fd);
            dropEntry(i, tp.fd);
          }
        }
      }
      if (tp.dest >= 0) freeDest(tp.dest);
      return undefined;
    }
    case 'addSession': {
      const t = table.getTunnel(m.cfg.tunnelId);
      if (!t) return 'no such tunnel';
      const s = new Session(m.cfg, t, stats, m.base);
      s.dev = m.fd;
      const sp = new KoffiSessionPort(new TapDevice(m.fd, m.vnet ? CAP_VNET_HDR : 0, ring));
      s.ctx = sp;
      table.addSession(s);
      if (TX && m.own) sp.entry = addEntry({ kind: 0, s }, m.fd);
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
      if (impair === null) return 'impairment runs in the tx worker';
      impair.set(s, m.cfg);
      return undefined;
    }
    case 'stop':
      running = false;
      return undefined;
  }
}

function forgetSession(s: Session): void {
  if (impair !== null) impair.clear(s);
  if (TX) {
    // Not polled here (another pair's), or already dropped on a hangup: nothing to undo.
    const entry = (s.ctx as KoffiSessionPort).entry;
    if (entry >= 0) dropEntry(entry, s.dev);
  }
  if (RX) purge(s);
  if (s.cfg.reorderTimeoutMs > 0) reorderSessions--;
  s.dev = -1;
  s.ctx = null; // late deliveries count as device drops, never reach a closed fd
}

function addrBytes(cfg: TunnelConfig): Buffer {
  return sockaddrFor(cfg.family, cfg.remote, 0).subarray(cfg.family === 4 ? 4 : 8, cfg.family === 4 ? 8 : 24);
}

function drainCommands(): void {
  pump.flushCoalesced(); // before any fd can go away
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

// ---------------------------------------------------------------- rx reads

function readUdp(t: Tunnel, fd: number): void {
  for (let round = 0; round < ROUNDS; round++) {
    const n = recvBatch(fd, batch, BATCH, HEADROOM);
    if (n <= 0) return;
    const now = pump.clock();
    for (let j = 0; j < n; j++) pump.rxUdpRun(t, slab, j * SS + batch.off[j], batch.len[j], batch.gso[j], now);
    pump.rxBatchDone();
    if (n < BATCH) return;
  }
}

function readRaw(e: RxRawEntry): void {
  const v4 = e.family === 4; // IPv4 raw sockets deliver the IP header, IPv6 ones do not
  for (let round = 0; round < ROUNDS; round++) {
    const n = recvBatch(e.fd, batch, BATCH, HEADROOM);
    if (n <= 0) return;
    const now = pump.clock();
    for (let j = 0; j < n; j++) pump.rxIp(slab, j * SS + batch.off[j], batch.len[j], v4, batch.srcAddr, v4 ? 0 : batch.srcAddrOff(j), now);
    pump.rxBatchDone();
    if (n < BATCH) return;
  }
}

// ---------------------------------------------------------------- loop

/**
 * One wake-up: the `n` descriptors epoll reported. A function of its own (not the
 * body of the loop below) so that V8 optimises it by calls: a loop in module code is
 * optimised only by on-stack replacement, which at ping rates came late or not at all.
 */
function dispatch(n: number): void {
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
        (e.s.ctx as KoffiSessionPort).entry = -1;
        continue;
      }
      // One thread for both directions: held coalescer flows are written before the
      // transmit path runs, so that received segments do not wait behind a round of TAP
      // reads (their slots, after BATCH, are never used by the transmit path).
      if (RX) pump.flushCoalesced();
      pump.pumpSession(e.s, batch, BATCH, ROUNDS);
    } else if (e.kind === 1) readUdp(e.t, (e.t.ctx as KoffiTunnelPort).fd);
    else readRaw(e);
  }
  pump.idle(pump.clock(), reorderSessions > 0);
}

let running = true;
port.postMessage({ seq: 0 }); // ready
while (running) dispatch(ep.wait(pump.waitMs(reorderSessions > 0 ? EXPIRE_INTERVAL_MS : -1, pump.clock())));
ring?.close();
port.close();
