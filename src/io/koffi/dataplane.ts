/**
 * The native dataplane, main-thread side. Opens TAPs and tunnel sockets
 * (control path, through koffi), then hands the file descriptors to
 * `options.workers` pairs of worker threads that run the per-packet loops:
 *
 *   tx worker: session TAPs  --read--> encap --sendmmsg--> tunnel sockets
 *   rx worker: tunnel sockets --recvmmsg--> decap --write--> session TAPs
 *
 * The main thread never touches packets. Counters live in a SharedArrayBuffer
 * (engine/stats.ts slots) that `show` reads while traffic flows. Each worker
 * owns the engine state of its direction (tx: ns; rx: nr, reorder queue);
 * the only state both share is send_seq, which sits in the stats slot.
 *
 * Several pairs: every worker keeps the whole table (all tunnels and sessions),
 * but only the owners poll a descriptor. A tunnel belongs to one pair, chosen
 * when it is added (the pair with the fewest tunnels): that pair's tx worker
 * reads the TAPs of all the tunnel's sessions, its rx worker reads the tunnel's
 * UDP socket. So every counter keeps one writer: a session's and its tunnel's
 * tx counters are written by the tunnel's tx worker, their rx counters by its
 * rx worker (a tunnel's sessions are not spread over pairs, because the
 * tunnel's own tx counters would then have several writers). Raw IP sockets
 * (one per local address, shared by every IP tunnel there) are all read by rx
 * worker 0: an IP packet names its session namespace-wide, whatever address
 * it came to, so one reader keeps each IP session's receive state (nr, reorder
 * queue) and the namespace's orphan slot (slot 0) single-writer. The tx side
 * of an IP tunnel still goes to its own pair (sendmmsg on a shared socket is
 * safe from several threads).
 *
 * Commands reach a worker as a message plus a poke on its eventfd (the worker
 * sleeps in epoll_wait); adds and removals go to every worker, and removals
 * are acknowledged by all of them before fds are closed, so a worker never
 * reads or writes a closed (or reused) descriptor.
 */
import { setFlagsFromString } from 'node:v8';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { kernelError } from '../../errors.js';
import type { SessionConfig, TunnelConfig } from '../../engine/config.js';
import { SLOT_SIZE, SlotAllocator } from '../../engine/stats.js';
import { interfaceExists } from '../ifexists.js';
import type { Dataplane, SessionHandle, TunnelHandle } from '../types.js';
import { closeFd, eventfdCreate, eventfdSignal } from './epoll.js';
import { setPersist } from './tap.js';
import { openSessionTap } from './session-tap.js';
import { dataplaneOptions, type DataplaneOptions } from '../options.js';
import { deleteLinks, randomMac, setMac, setMtu } from './netdev.js';
import { enableUdpGro, openUdpTunnelSocket } from './udp.js';
import { openRawIpSocket } from './rawip.js';
import type { WorkerCommand, WorkerInit, WorkerReply } from './worker-protocol.js';
import { CaptureRing } from '../capture-ring.js';
import type { ImpairConfig } from '../../engine/impair.js';

type Cmd = WorkerCommand extends infer T ? (T extends unknown ? Omit<T, 'seq'> : never) : never;

/** Slot 0 holds namespace-level drops (IP encap packets for no session, control). */
const MAX_SLOTS = 32768;

interface RawSock {
  fd: number;
  refs: number;
}

interface TunnelState {
  cfg: TunnelConfig;
  base: number;
  fd: number; // UDP socket, or the shared raw socket
  rawKey: string; // '' for UDP
  sessions: Set<number>;
  /** The worker pair whose tx worker reads this tunnel's session TAPs. */
  pair: number;
}

/** The rx worker that reads every raw IP socket (see the header comment). */
const RAW_RX = 0;

interface SessionState {
  cfg: SessionConfig;
  base: number;
  fd: number; // TAP
}

/**
 * V8 compiles a function to optimised code only after it has run a budget of
 * bytecode (--interrupt-budget, 66 KB by default, several times over for a large
 * function). A worker's per-wake-up code (epoll dispatch, one receive, one TAP
 * write, one read and send) runs a few hundred bytes of it per frame, so at ping
 * rates it stayed in the baseline tier for minutes. With an eighth of the budget
 * the idle RTT between two daemons fell from 0.51 to 0.41 ms (medians of 3
 * interleaved rounds of 1,000 pings at 10 ms) for the same CPU, with no change at
 * 30 kpps (docs/performance.md, "Per wake-up"). The flag is process-wide and V8
 * reads it whenever it resets a function's budget; it is set before the first
 * worker starts. The main thread's control code tiers up sooner too, which costs
 * nothing measurable.
 */
const INTERRUPT_BUDGET = 8192;
function tierUpSooner(): void {
  // An operator's own `node --interrupt-budget=N` wins. Setting it again (a second
  // dataplane in one process) changes nothing.
  if (process.execArgv.some((a) => a.startsWith('--interrupt-budget') || a.startsWith('--interrupt_budget'))) return;
  setFlagsFromString(`--interrupt-budget=${INTERRUPT_BUDGET}`);
}

class WorkerHandle {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  readonly evfd: number;
  readonly worker: Worker;
  private readonly port: MessagePort;
  private dead: Error | null = null;

  constructor(init: Omit<WorkerInit, 'evfd'>) {
    this.evfd = eventfdCreate();
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(new URL('./worker.js', import.meta.url), {
      workerData: { ...init, evfd: this.evfd, port: port2 },
      transferList: [port2],
    });
    this.port.on('message', (m: WorkerReply) => {
      const p = this.pending.get(m.seq);
      if (!p) return;
      this.pending.delete(m.seq);
      if (m.error) p.reject(new Error(m.error));
      else p.resolve();
    });
    const fail = (e: Error) => {
      this.dead = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`dataplane worker exited (${code})`)));
  }

  /** Send a command and wait until the worker has applied it. */
  call(cmd: Cmd): Promise<void> {
    if (this.dead) return Promise.reject(this.dead);
    const seq = ++this.seq;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      this.port.postMessage({ ...cmd, seq });
      eventfdSignal(this.evfd);
    });
  }

  async stop(): Promise<void> {
    if (!this.dead) {
      try {
        await this.call({ op: 'stop' });
      } catch {
        /* exiting anyway */
      }
    }
    await this.worker.terminate();
    this.port.close();
    closeFd(this.evfd);
  }
}

export class KoffiDataplane implements Dataplane {
  readonly name = 'koffi';
  readonly stats: Float64Array;
  private readonly slots: SlotAllocator;
  private readonly tunnels = new Map<number, TunnelState>();
  private readonly sessions = new Map<string, SessionState>();
  private readonly raw = new Map<string, RawSock>();
  /** tx[i] and rx[i] form worker pair i. */
  private readonly tx: WorkerHandle[] = [];
  private readonly rx: WorkerHandle[] = [];
  /** Tunnels per worker pair (new tunnels go to the least loaded). */
  private readonly load: number[] = [];
  /** Capture rings, one per worker (src/io/capture-ring.ts). */
  readonly features = { capture: true, impair: true } as const;
  readonly captureRings: readonly CaptureRing[];

  /**
   * Offload mode (src/io/offload): session TAPs with IFF_VNET_HDR and TSO/checksum offloads,
   * segmented on transmit and coalesced on receive (options.offload; per TAP, off by itself
   * where the kernel refuses it).
   */
  readonly offload: boolean;
  private readonly options: DataplaneOptions;

  constructor(opts: Partial<DataplaneOptions> = {}) {
    this.options = dataplaneOptions(opts);
    this.offload = this.options.offload;
    const sab = new SharedArrayBuffer(MAX_SLOTS * SLOT_SIZE * Float64Array.BYTES_PER_ELEMENT);
    this.stats = new Float64Array(sab);
    this.slots = new SlotAllocator(this.stats, MAX_SLOTS);
    tierUpSooner(); // before the first worker starts
    const rings: CaptureRing[] = [];
    for (let i = 0; i < this.options.workers; i++) {
      /** A worker thread with a capture ring of its own. */
      const thread = (role: WorkerInit['role']): WorkerHandle => {
        const ring = new CaptureRing();
        rings.push(ring);
        return new WorkerHandle({ role, index: i, stats: sab, orphanBase: 0, capture: ring.sab, options: this.options });
      };
      // Only rx worker RAW_RX reads raw IP sockets, so only it writes the orphan slot.
      if (this.options.workerThreads === 1) {
        // One thread per worker, both directions (tx[i] and rx[i] are the same handle).
        const io = thread('io');
        this.tx.push(io);
        this.rx.push(io);
      } else {
        this.tx.push(thread('tx'));
        this.rx.push(thread('rx'));
      }
      this.load.push(0);
    }
    this.captureRings = rings;
  }

  /** Workers (tx + rx threads each, or one thread: workerThreads). */
  get workers(): number {
    return this.tx.length;
  }

  get workerThreads(): 1 | 2 {
    return this.options.workerThreads;
  }

  /** Sends `cmd(worker)` to every worker thread (tx then rx of each pair, or its one io thread) and waits for all (rejects with the first error). */
  private all(cmd: (role: 'tx' | 'rx' | 'io', i: number) => Cmd): Promise<void> {
    const calls: Array<Promise<void>> = [];
    for (let i = 0; i < this.tx.length; i++) {
      if (this.tx[i] === this.rx[i]) calls.push(this.tx[i].call(cmd('io', i)));
      else calls.push(this.tx[i].call(cmd('tx', i)), this.rx[i].call(cmd('rx', i)));
    }
    return settleAll(calls);
  }

  /** The pair a new tunnel goes to: the one with the fewest tunnels (lowest index on a tie). */
  private pickPair(): number {
    let best = 0;
    for (let i = 1; i < this.load.length; i++) if (this.load[i] < this.load[best]) best = i;
    return best;
  }

  /** Sets or clears (null) a session's transmit impairment (src/io/impair.ts), in the tx worker. */
  async setImpairment(tunnelId: number, sessionId: number, cfg: ImpairConfig | null): Promise<void> {
    const key = `${tunnelId}/${sessionId}`;
    if (!this.sessions.has(key)) throw kernelError('ENODEV');
    const t = this.tunnels.get(tunnelId);
    if (!t) throw kernelError('ENODEV');
    await this.tx[t.pair].call({ op: 'impair', tunnelId, sessionId, cfg });
    if (cfg === null) this.impairments.delete(key);
    else this.impairments.set(key, cfg);
  }

  /** The session's active impairment, or null. */
  impairment(tunnelId: number, sessionId: number): ImpairConfig | null {
    return this.impairments.get(`${tunnelId}/${sessionId}`) ?? null;
  }

  private readonly impairments = new Map<string, ImpairConfig>();

  private allocSlot(): number {
    const base = this.slots.take();
    if (base === null) throw kernelError('ENOSPC', 'too many tunnels and sessions');
    return base;
  }

  private freeSlot(base: number): void {
    this.slots.give(base);
  }

  async addTunnel(cfg: TunnelConfig): Promise<TunnelHandle> {
    let fd: number;
    let rawKey = '';
    if (cfg.encap === 'udp') {
      fd = openUdpTunnelSocket(cfg);
      if (this.offload && this.options.udpGro) enableUdpGro(fd);
    } else {
      rawKey = `${cfg.family}/${cfg.local}`;
      const r = this.raw.get(rawKey);
      if (r) {
        r.refs++;
        fd = r.fd;
      } else {
        fd = openRawIpSocket({ family: cfg.family, local: cfg.local });
        this.raw.set(rawKey, { fd, refs: 1 });
      }
    }
    let base: number;
    try {
      base = this.allocSlot();
    } catch (e) {
      this.releaseSocket({ fd, rawKey });
      throw e;
    }
    const pair = this.pickPair();
    const rxOwner = rawKey ? RAW_RX : pair;
    const st: TunnelState = { cfg, base, fd, rawKey, sessions: new Set(), pair };
    try {
      await this.all((role, i) => ({ op: 'addTunnel', cfg, base, fd, own: i === (role === 'tx' ? pair : rxOwner) }));
    } catch (e) {
      await this.all(() => ({ op: 'delTunnel', tunnelId: cfg.tunnelId })).catch(() => {});
      this.releaseSocket(st);
      this.freeSlot(base);
      throw e;
    }
    this.tunnels.set(cfg.tunnelId, st);
    this.load[pair]++;
    return { statsBase: base };
  }

  private releaseSocket(t: Pick<TunnelState, 'fd' | 'rawKey'>): void {
    if (!t.rawKey) {
      closeFd(t.fd);
      return;
    }
    const r = this.raw.get(t.rawKey);
    if (r && --r.refs === 0) {
      this.raw.delete(t.rawKey);
      closeFd(r.fd);
    }
  }

  async addSession(cfg: SessionConfig, mtu: number): Promise<SessionHandle> {
    const t = this.tunnels.get(cfg.tunnelId);
    if (!t) throw kernelError('ENODEV');
    // A persistent TAP of that name left by an earlier daemon is adopted as it
    // is (addresses, MTU, up state, bridge port survive a restart).
    const adopt = interfaceExists(cfg.ifname);
    const tap = openSessionTap(cfg.ifname, this.offload);
    const ifname = tap.name;
    try {
      if (!adopt) {
        setMtu(ifname, mtu);
        setMac(ifname, randomMac());
      }
    } catch (e) {
      setPersist(tap.fd, false);
      closeFd(tap.fd);
      throw e;
    }
    const base = this.allocSlot();
    const real: SessionConfig = ifname === cfg.ifname ? cfg : { ...cfg, ifname };
    try {
      await this.all((role, i) => ({ op: 'addSession', cfg: real, base, fd: tap.fd, vnet: tap.offload, own: role !== 'rx' && i === t.pair }));
    } catch (e) {
      await this.all(() => ({ op: 'delSession', tunnelId: cfg.tunnelId, sessionId: cfg.sessionId })).catch(() => {});
      setPersist(tap.fd, false);
      closeFd(tap.fd);
      this.freeSlot(base);
      throw e;
    }
    this.sessions.set(`${cfg.tunnelId}/${cfg.sessionId}`, { cfg: real, base, fd: tap.fd });
    t.sessions.add(cfg.sessionId);
    return { statsBase: base, ifname };
  }

  async removeSession(tunnelId: number, sessionId: number): Promise<void> {
    const key = `${tunnelId}/${sessionId}`;
    const s = this.sessions.get(key);
    if (!s) throw kernelError('ENODEV');
    await this.all(() => ({ op: 'delSession', tunnelId, sessionId }));
    // Every worker has dropped the fd: now the interface can go.
    setPersist(s.fd, false);
    closeFd(s.fd);
    this.sessions.delete(key);
    this.impairments.delete(key);
    this.tunnels.get(tunnelId)?.sessions.delete(sessionId);
    this.freeSlot(s.base);
  }

  /** Like removeSession for each, but the interfaces go in one rtnetlink batch (one RCU wait), as in removeTunnel. */
  async removeSessions(keys: ReadonlyArray<readonly [number, number]>): Promise<void> {
    // Every worker drops every session first (pipelined), then the interfaces can go.
    await settleAll(
      keys.flatMap(([tunnelId, sessionId]) =>
        this.sessions.has(`${tunnelId}/${sessionId}`) ? [this.all(() => ({ op: 'delSession', tunnelId, sessionId }))] : [],
      ),
    );
    const gone: SessionState[] = [];
    for (const [tunnelId, sessionId] of keys) {
      const key = `${tunnelId}/${sessionId}`;
      const s = this.sessions.get(key);
      if (!s) continue;
      gone.push(s);
      this.sessions.delete(key);
      this.impairments.delete(key);
      this.tunnels.get(tunnelId)?.sessions.delete(sessionId);
    }
    this.dropInterfaces(gone);
  }

  /** Deletes the interfaces of sessions the workers dropped, in one rtnetlink request, and frees their fds and slots. */
  private dropInterfaces(gone: readonly SessionState[]): void {
    try {
      deleteLinks(gone.map((s) => s.cfg.ifname));
    } catch {
      for (const s of gone) setPersist(s.fd, false); // closing below removes them one by one
    }
    for (const s of gone) {
      closeFd(s.fd);
      this.freeSlot(s.base);
    }
  }

  async removeTunnel(tunnelId: number): Promise<void> {
    const t = this.tunnels.get(tunnelId);
    if (!t) throw kernelError('ENODEV');
    // The workers drop the tunnel with all its sessions; then every session
    // interface goes in one rtnetlink request, so the kernel waits for RCU once
    // instead of once per device (~15-40 ms each: 10 sessions cost 0.4 s one by one).
    await this.all(() => ({ op: 'delTunnel', tunnelId }));
    const gone: SessionState[] = [];
    for (const sid of t.sessions) {
      const key = `${tunnelId}/${sid}`;
      const s = this.sessions.get(key);
      if (!s) continue;
      gone.push(s);
      this.sessions.delete(key);
      this.impairments.delete(key);
    }
    t.sessions.clear();
    this.dropInterfaces(gone);
    this.releaseSocket(t);
    this.tunnels.delete(tunnelId);
    this.load[t.pair]--;
    this.freeSlot(t.base);
  }

  /** Stop the workers and close every fd. Session TAPs stay (persistent) for the next daemon. */
  async close(): Promise<void> {
    await Promise.all([...new Set([...this.tx, ...this.rx])].map((w) => w.stop()));
    for (const s of this.sessions.values()) closeFd(s.fd);
    for (const t of this.tunnels.values()) if (!t.rawKey) closeFd(t.fd);
    for (const r of this.raw.values()) closeFd(r.fd);
    this.sessions.clear();
    this.tunnels.clear();
    this.raw.clear();
  }
}

/**
 * Waits for every call to settle (so no removal is still in flight in some worker when
 * the caller goes on to close descriptors), then rejects with the first error, if any.
 */
async function settleAll(calls: ReadonlyArray<Promise<void>>): Promise<void> {
  const results = await Promise.allSettled(calls);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}
