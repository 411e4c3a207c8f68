/**
 * An in-memory linked pair of L2TPv3 endpoints for tests, benches and the
 * example. Each endpoint runs the production pump (../pump.ts) over in-memory
 * devices: a frame device per session (delivered frames are recorded) and a
 * tunnel socket per tunnel that puts packets on the link. The link carries
 * packets between the endpoints through a seeded FaultInjector, with explicit
 * time (`now`, `advance`). Packets travel as UDP payloads (with
 * connected-socket address/port matching, like the kernel's tunnel socket)
 * or as raw IP: IPv4 with a real IPv4 header that the receiver validates
 * (wire/ip.ts), IPv6 without one (as raw sockets deliver them).
 *
 * Not a hot path: the harness copies packets; the pump and engine are the real ones.
 */
import type { SessionConfig, TunnelConfig } from '../../engine/config.js';
import { SESSION_DEFAULTS, TUNNEL_DEFAULTS } from '../../engine/config.js';
import { SLOT_SIZE, SlotAllocator, TX_PACKETS } from '../../engine/stats.js';
import { HEADROOM } from '../../engine/layout.js';
import { Table } from '../../engine/table.js';
import type { Tunnel } from '../../engine/tunnel.js';
import type { Session } from '../../engine/session.js';
import { RX_RESULT_NAMES } from '../../engine/rx-result.js';
import { addressBytes } from '../../wire/address.js';
import { checkIpv4L2tp, Ipv4Repr, IPPROTO_L2TP } from '../../wire/ip.js';
import type { FrameDevice, PacketBatch, TunnelSocket } from '../device.js';
import type { ImpairConfig } from '../../engine/impair.js';
import { Pump, SessionPort, TunnelPort } from '../pump.js';
import { Impairer } from '../stages/impair.js';
import { FaultInjector, type FaultOptions } from './fault-injector.js';

/** Address bytes (4 or 16) of a textual address; 16 zero bytes when it does not parse. */
function addrBytes(addr: string): Buffer {
  try {
    return addressBytes(addr);
  } catch {
    return Buffer.alloc(16);
  }
}

/** -ENOTCONN: an endpoint that is on no link cannot send. */
const ENOTCONN = 107;

/** Preallocated slots, as a backend's batch. */
export class MemBatch implements PacketBatch {
  readonly buf: Buffer;
  readonly off: Uint32Array;
  readonly len: Uint32Array;
  constructor(
    readonly n: number,
    readonly slotSize: number,
  ) {
    this.buf = Buffer.alloc(n * slotSize);
    this.off = new Uint32Array(n);
    this.len = new Uint32Array(n);
  }
}

/** A session's frame device: written frames are recorded by the endpoint. */
class MemFrameDevice implements FrameDevice {
  readonly caps = 0;
  readonly id = -1;
  constructor(
    private readonly ep: MemEndpoint,
    private readonly s: Session,
  ) {}

  read(): number {
    return 0; // frames enter through MemEndpoint.send
  }

  write(buf: Buffer, off: number, len: number): number {
    this.ep.record(this.s, buf, off, len);
    return len;
  }
}

/** A tunnel's socket: packets go onto the endpoint's link. */
class MemTunnelSocket implements TunnelSocket {
  readonly caps = 0;
  constructor(
    private readonly ep: MemEndpoint,
    private readonly t: Tunnel,
  ) {}

  send(b: PacketBatch, first: number, n: number): number {
    const link = this.ep.link;
    if (link === null) return -ENOTCONN;
    for (let j = first; j < first + n; j++) link.transmit(this.ep, this.t, b.buf, j * b.slotSize + b.off[j], b.len[j]);
    return n;
  }

  waitWritable(): void {}
}

/** One packet in flight. `data` holds exactly the bytes a socket would return. */
export interface MemPacket {
  encap: 'udp' | 'ip';
  family: 4 | 6;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  data: Buffer;
}

/** A frame handed to an endpoint's sink (copied out of the engine's buffer). */
export interface ReceivedFrame {
  tunnelId: number;
  sessionId: number;
  frame: Buffer;
  at: number;
}

/** Offset at which received packets are placed inside their buffer (exercises offset handling). */
const RX_OFFSET = 7;
const MAX_SLOTS = 256;

export class MemEndpoint {
  readonly name: string;
  readonly table: Table;
  /** Counter slots: slot 0 is the table's orphan slot; tunnels and sessions get the next free ones. */
  readonly stats = new Float64Array(MAX_SLOTS * SLOT_SIZE);
  private readonly slots = new SlotAllocator(this.stats, MAX_SLOTS);
  /** The production packet path, over this endpoint's in-memory devices. */
  readonly pump: Pump;
  readonly received: ReceivedFrame[] = [];
  /** RxResult histogram of every packet this endpoint decapsulated. */
  readonly results = new Array<number>(RX_RESULT_NAMES.length).fill(0);
  /** UDP packets that matched no tunnel socket (never reach L2TP). */
  unmatched = 0;
  /** Optional callback per delivered frame (after it was recorded in `received`). */
  onFrame: ((s: Session, frame: Buffer) => void) | null = null;
  link: MemLink | null = null;
  private readonly tx = new MemBatch(1, HEADROOM + 65536);

  constructor(name: string) {
    this.name = name;
    this.table = new Table(this.stats.subarray(0, SLOT_SIZE));
    this.pump = new Pump(this.table, { impair: new Impairer(new MemBatch(16, HEADROOM + 65536)) });
    this.pump.clock = () => (this.link !== null ? this.link.now : 0);
  }

  private allocSlot(): number {
    const base = this.slots.take();
    if (base === null) throw new RangeError('mem endpoint: out of counter slots');
    return base;
  }

  /** Add a tunnel (defaults from config.ts fill what is missing). */
  addTunnel(cfg: Partial<TunnelConfig> & Pick<TunnelConfig, 'tunnelId' | 'local' | 'remote'>): Tunnel {
    const full: TunnelConfig = { ...TUNNEL_DEFAULTS, peerTunnelId: cfg.tunnelId, family: cfg.local.includes(':') ? 6 : 4, ...cfg };
    this.table.checkTunnel(full);
    const t = this.table.addTunnel(full, this.stats, this.allocSlot());
    t.ctx = new TunnelPort(new MemTunnelSocket(this, t), addrBytes(full.remote));
    return t;
  }

  /** Add a session (defaults from config.ts fill what is missing). */
  addSession(cfg: Partial<SessionConfig> & Pick<SessionConfig, 'tunnelId' | 'sessionId' | 'peerSessionId'>): Session {
    const full: SessionConfig = { ...SESSION_DEFAULTS, ...cfg };
    this.table.checkSession(full);
    const s = this.table.addSession(full, this.stats, this.allocSlot());
    s.ctx = new SessionPort(new MemFrameDevice(this, s));
    return s;
  }

  /** Sets or clears (null) a session's transmit impairment (the pump's impairment stage). */
  setImpairment(tunnelId: number, sessionId: number, cfg: ImpairConfig | null): void {
    const s = this.table.getSession(tunnelId, sessionId);
    if (!s) throw new RangeError(`${this.name}: no session ${tunnelId}/${sessionId}`);
    this.pump.impair!.set(s, cfg);
  }

  /** Sends impaired packets that are due at the link's time (a backend's wait loop does this). */
  tick(): void {
    this.pump.idle(this.link !== null ? this.link.now : 0, false);
  }

  /**
   * Read `frame` from session (tunnelId, sessionId)'s device: the pump encapsulates it
   * and sends it on the link (counting it; tx_errors when there is no link).
   * Returns the L2TP packet length, or -1 when the send failed.
   */
  send(tunnelId: number, sessionId: number, frame: Uint8Array): number {
    const s = this.table.getSession(tunnelId, sessionId);
    if (!s) throw new RangeError(`${this.name}: no session ${tunnelId}/${sessionId}`);
    const b = this.tx;
    b.buf.set(frame, HEADROOM);
    b.off[0] = HEADROOM;
    b.len[0] = frame.length;
    const before = s.stats[s.base + TX_PACKETS];
    this.pump.txFrames(s, b, 0, 1);
    return s.stats[s.base + TX_PACKETS] > before ? b.len[0] : -1;
  }

  /** Hand one packet from the link to the pump, as a socket read would. */
  receive(p: MemPacket, nowMs: number): number {
    const buf = Buffer.alloc(RX_OFFSET + p.data.length + 5, 0xee);
    p.data.copy(buf, RX_OFFSET);
    let r: number;
    if (p.encap === 'udp') {
      const t = this.findUdpTunnel(p);
      if (!t) {
        this.unmatched++;
        return -1;
      }
      r = this.pump.rxUdp(t, buf, RX_OFFSET, p.data.length, nowMs);
    } else if (p.family === 4) {
      // a raw IPv4 socket only hands over well-formed IPv4 packets of protocol 115
      if (checkIpv4L2tp(buf, RX_OFFSET, p.data.length) < 0) {
        this.unmatched++;
        return -1;
      }
      r = this.pump.rxIp(buf, RX_OFFSET, p.data.length, true, buf, 0, nowMs);
    } else {
      r = this.pump.rxIp(buf, RX_OFFSET, p.data.length, false, addrBytes(p.src), 0, nowMs);
    }
    this.results[r]++;
    return r;
  }

  /** The tunnel whose (connected) socket would receive this UDP packet. */
  private findUdpTunnel(p: MemPacket): Tunnel | undefined {
    for (const t of this.table.tunnels()) {
      const c = t.cfg;
      if (c.encap === 'udp' && c.local === p.dst && c.remote === p.src && c.udpSport === p.dport && c.udpDport === p.sport) return t;
    }
    return undefined;
  }

  /** A session device's write: record a copy of the frame. */
  record(s: Session, buf: Buffer, off: number, len: number): void {
    const frame = Buffer.from(buf.subarray(off, off + len));
    this.received.push({ tunnelId: s.tunnel.tunnelId, sessionId: s.sessionId, frame, at: this.link ? this.link.now : 0 });
    if (this.onFrame) this.onFrame(s, frame);
  }
}

export class MemLink {
  readonly a: MemEndpoint;
  readonly b: MemEndpoint;
  readonly faults: FaultInjector;
  /** Explicit time in ms, passed to decap. */
  now = 0;
  private readonly inFlight: Array<{ to: MemEndpoint; p: MemPacket }> = [];
  private held: { to: MemEndpoint; p: MemPacket } | null = null;
  private ipId = 1;

  constructor(a: MemEndpoint, b: MemEndpoint, faults: FaultOptions | FaultInjector = {}) {
    this.a = a;
    this.b = b;
    a.link = this;
    b.link = this;
    this.faults = faults instanceof FaultInjector ? faults : new FaultInjector(faults);
  }

  /** Convenience: two fresh endpoints named A and B on a new link. */
  static pair(faults: FaultOptions = {}): MemLink {
    return new MemLink(new MemEndpoint('A'), new MemEndpoint('B'), faults);
  }

  peerOf(e: MemEndpoint): MemEndpoint {
    return e === this.a ? this.b : this.a;
  }

  advance(ms: number): void {
    this.now += ms;
  }

  /** Number of packets waiting for flush(). */
  get pending(): number {
    return this.inFlight.length + (this.held ? 1 : 0);
  }

  /** Called by an endpoint: wrap the L2TP packet buf[off, off+len) for its tunnel and queue it. */
  transmit(from: MemEndpoint, t: Tunnel, buf: Buffer, off: number, len: number): void {
    const c = t.cfg;
    let data: Buffer;
    if (c.encap === 'ip' && c.family === 4) {
      const hdr = { tos: 0, totalLen: 20 + len, id: this.ipId++ & 0xffff, frag: 0, ttl: 64, proto: IPPROTO_L2TP, csum: 0, src: c.local, dst: c.remote, options: Buffer.alloc(0) };
      data = Buffer.alloc(20 + len);
      Ipv4Repr.emit(hdr, data, 0);
      buf.copy(data, 20, off, off + len);
    } else {
      data = Buffer.from(buf.subarray(off, off + len));
    }
    this.inject(this.peerOf(from), { encap: c.encap, family: c.family, src: c.local, dst: c.remote, sport: c.udpSport, dport: c.udpDport, data });
  }

  /** Put raw packet bytes on the link towards `to`, through the fault injector. */
  inject(to: MemEndpoint, p: MemPacket): void {
    const d = this.faults.decide(p.data.length);
    if (d.drop) return;
    if (d.corruptAt >= 0) p.data[d.corruptAt] ^= 1 + this.faults.rng.int(255);
    const items = d.duplicate ? [{ to, p }, { to, p: { ...p, data: Buffer.from(p.data) } }] : [{ to, p }];
    if (d.reorder && !this.held) {
      this.faults.counts.reordered++;
      this.held = items[0];
      if (items.length > 1) this.inFlight.push(items[1]);
      return;
    }
    for (const it of items) this.inFlight.push(it);
    if (this.held) {
      this.inFlight.push(this.held);
      this.held = null;
    }
  }

  /** Put raw bytes on the link, bypassing faults (a hostile or misconfigured sender). */
  injectRaw(to: MemEndpoint, p: MemPacket): void {
    this.inFlight.push({ to, p });
  }

  /** Deliver everything in flight (including a held-back packet) at the current time. Returns the count. */
  flush(): number {
    if (this.held) {
      this.inFlight.push(this.held);
      this.held = null;
    }
    let n = 0;
    while (this.inFlight.length > 0) {
      const it = this.inFlight.shift()!;
      it.to.receive(it.p, this.now);
      n++;
    }
    return n;
  }
}
