/**
 * Daemon side of `ul2tp capture` and `ul2tp impair`.
 *
 * Capture: a `capture` request keeps its connection open. The daemon replies
 * `{"id":N,"ok":true,"result":{"started":true}}`, then writes one line per
 * packet on the same connection until the client closes it:
 *
 *   {"id":N,"packet":{"t":<ms since epoch>,"dir":"tx"|"rx","encap":"udp"|"ip",
 *                     "tunnel_id":T,"session_id":S,"data":"<base64>"}}
 *
 * `data` is the L2TP packet (from the session header on); the client adds
 * IP/UDP headers for pcap. `session_id` is our local id in both directions
 * (tx: the sending session; rx: the id in the received header). While at
 * least one capture runs, the workers copy packets into their capture rings
 * (src/io/capture-ring.ts); a timer here drains them every DRAIN_MS. Packets
 * are dropped (and counted) when a ring is full or a client reads too slowly.
 */
import type { Socket } from 'node:net';
import { L2tpError, kernelError } from '../errors.js';
import { CTL_ON, drainRing, ringDrops, type CaptureRing, type CapturedPacket } from '../io/capture-ring.js';
import { IMPAIR_KEYS, impairActive, impairFromJson } from '../engine/impair.js';
import type { Dataplane } from '../io/types.js';

const DRAIN_MS = 10;
/** A client with this much unsent output loses packets instead of growing the daemon's memory. */
const MAX_BACKLOG = 8 << 20;

export interface CaptureFilter {
  tunnel_id: number;
  session_id: number;
}

/** What the hub needs from the controller: which IP-encap session belongs to which tunnel. */
export interface SessionLister {
  tunnelGet(): { tunnels: Array<{ tunnel_id: number; encap: string }> };
  sessionGet(): { sessions: Array<{ tunnel_id: number; session_id: number }> };
}

interface Subscriber {
  sock: Socket;
  id: number;
  filter: CaptureFilter;
  sent: number;
  dropped: number;
}

export class CaptureHub {
  private readonly subs: Subscriber[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** IP-encap session id → tunnel id (raw receive records carry no tunnel). */
  private ipSessions = new Map<number, number>();
  private mapAt = 0;

  constructor(
    private readonly rings: readonly CaptureRing[],
    private readonly lister: SessionLister,
  ) {}

  get active(): number {
    return this.subs.length;
  }

  /** Packets lost because a ring was full (since the daemon started). */
  get ringDrops(): number {
    let n = 0;
    for (const r of this.rings) n += ringDrops(r);
    return n;
  }

  subscribe(sock: Socket, id: number, filter: CaptureFilter): void {
    if (this.subs.length === 0) {
      // Leftovers of an earlier capture (written after it stopped) are not ours.
      for (const r of this.rings) drainRing(r, () => {});
    }
    const sub: Subscriber = { sock, id, filter, sent: 0, dropped: 0 };
    this.subs.push(sub);
    for (const r of this.rings) Atomics.add(r.ctl, CTL_ON, 1);
    const done = (): void => this.unsubscribe(sub);
    sock.once('close', done);
    sock.once('error', done);
    write(sock, { id, ok: true, result: { started: true } });
    if (this.timer === null) this.timer = setInterval(() => this.drain(), DRAIN_MS);
  }

  private unsubscribe(sub: Subscriber): void {
    const i = this.subs.indexOf(sub);
    if (i < 0) return;
    this.subs.splice(i, 1);
    for (const r of this.rings) Atomics.sub(r.ctl, CTL_ON, 1);
    if (this.subs.length === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
      for (const r of this.rings) drainRing(r, () => {});
    }
  }

  private tunnelOf(p: CapturedPacket): number {
    if (p.tunnelId !== 0) return p.tunnelId;
    const now = Date.now();
    if (now - this.mapAt > 1000) {
      this.mapAt = now;
      const ip = new Set(this.lister.tunnelGet().tunnels.filter((t) => t.encap === 'ip').map((t) => t.tunnel_id));
      this.ipSessions = new Map(
        this.lister
          .sessionGet()
          .sessions.filter((s) => ip.has(s.tunnel_id))
          .map((s) => [s.session_id, s.tunnel_id]),
      );
    }
    return this.ipSessions.get(p.sessionId) ?? 0;
  }

  /** Moves every captured packet to the clients whose filter matches (time order within a worker). */
  drain(): void {
    const out: CapturedPacket[] = [];
    for (const r of this.rings) drainRing(r, (p) => out.push(p));
    if (out.length === 0) return;
    if (this.rings.length > 1) out.sort((a, b) => a.timeMs - b.timeMs);
    for (const p of out) {
      const tid = this.tunnelOf(p);
      let line: string | null = null;
      for (const sub of this.subs) {
        const f = sub.filter;
        if ((f.tunnel_id !== 0 && f.tunnel_id !== tid) || (f.session_id !== 0 && f.session_id !== p.sessionId)) continue;
        if (sub.sock.writableLength > MAX_BACKLOG) {
          sub.dropped++;
          continue;
        }
        line ??=
          JSON.stringify({
            id: sub.id,
            packet: { t: p.timeMs, dir: p.dir, encap: p.encap, tunnel_id: tid, session_id: p.sessionId, data: p.data.toString('base64') },
          }) + '\n';
        // The id differs per subscriber: patch it in rather than re-encoding the packet.
        sub.sock.write(sub.id === this.subs[0].id ? line : line.replace(/^\{"id":\d+/, `{"id":${sub.id}`));
        sub.sent++;
      }
    }
  }

  /** Stop everything (daemon shutdown). */
  close(): void {
    for (const sub of [...this.subs]) {
      sub.sock.destroy();
      this.unsubscribe(sub);
    }
  }
}

function write(sock: Socket, msg: unknown): void {
  if (!sock.destroyed && sock.writable) sock.write(JSON.stringify(msg) + '\n');
}

const hubs = new WeakMap<Dataplane, CaptureHub>();

/**
 * Daemon hook for a validated `capture` request: starts streaming on `sock`
 * (or replies with an error when the backend cannot capture).
 */
export function startCapture(sock: Socket, id: number, attrs: Record<string, unknown>, dp: Dataplane, lister: SessionLister): void {
  if (!dp.features.capture || dp.captureRings.length === 0) {
    const e = new L2tpError('DAEMON', `capture is not supported by the ${dp.name} backend (use the koffi backend)`);
    write(sock, { id, ok: false, error: { code: e.code, message: e.message } });
    return;
  }
  let hub = hubs.get(dp);
  if (hub === undefined) {
    hub = new CaptureHub(dp.captureRings, lister);
    hubs.set(dp, hub);
  }
  hub.subscribe(sock, id, {
    tunnel_id: typeof attrs.tunnel_id === 'number' ? attrs.tunnel_id : 0,
    session_id: typeof attrs.session_id === 'number' ? attrs.session_id : 0,
  });
}

/** The hub of a dataplane, if a capture ever ran (metrics, tests). */
export function captureHubOf(dp: Dataplane): CaptureHub | undefined {
  return hubs.get(dp);
}

/**
 * Daemon hook for a validated `impair` request. Attributes: tunnel_id,
 * session_id, then either `off: true` or the settings (loss, duplicate,
 * reorder, distance, delay, jitter, rate, seed). Settings replace the
 * previous ones entirely; all-zero settings clear the impairment.
 */
export async function impairOp(attrs: Record<string, unknown>, dp: Dataplane): Promise<Record<string, never>> {
  if (!dp.features.impair)
    throw new L2tpError('DAEMON', `impairment is not supported by the ${dp.name} backend (use the koffi backend)`);
  const tid = attrs.tunnel_id as number;
  const sid = attrs.session_id as number;
  if (attrs.off === true) {
    for (const k of IMPAIR_KEYS) if (attrs[k] !== undefined) throw new L2tpError('PROTOCOL', `impair: "off" cannot be combined with "${k}"`);
    await dp.setImpairment(tid, sid, null);
    return {};
  }
  let cfg;
  try {
    cfg = impairFromJson(attrs);
  } catch (e) {
    throw new L2tpError('PROTOCOL', `impair: ${(e as Error).message}`);
  }
  if (cfg.jitterMs > 0 && cfg.delayMs === 0) throw kernelError('EINVAL', 'jitter needs a delay');
  await dp.setImpairment(tid, sid, impairActive(cfg) ? cfg : null);
  return {};
}
