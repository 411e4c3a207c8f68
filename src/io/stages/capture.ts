/**
 * Capture stage of the pump: copies packets into a CaptureRing (capture-ring.ts)
 * while someone captures (`ctl[CTL_ON]` non-zero, checked once per batch).
 * Transmitted packets are captured after encapsulation, received ones before
 * decapsulation, so the ring holds what is on the wire (L2TP header onwards).
 */
import type { Session } from '../../engine/session.js';
import type { Tunnel } from '../../engine/tunnel.js';
import { CaptureRing, CTL_ON, DIR_RX, DIR_TX, ENCAP_IP, ENCAP_UDP, captureOne } from '../capture-ring.js';
import type { PacketBatch } from '../device.js';

export class CaptureStage {
  private readonly ctl: Int32Array;

  constructor(readonly ring: CaptureRing) {
    this.ctl = ring.ctl;
  }

  /** True while a capture runs. */
  on(): boolean {
    return this.ctl[CTL_ON] !== 0;
  }

  /** Encapsulated packets of session `s` in slots [first, first + n). */
  tx(s: Session, b: PacketBatch, first: number, n: number): void {
    const now = performance.timeOrigin + performance.now();
    const enc = s.txUdp ? ENCAP_UDP : ENCAP_IP;
    const ss = b.slotSize;
    for (let j = first; j < first + n; j++) captureOne(this.ring, b.buf, j * ss + b.off[j], b.len[j], DIR_TX, enc, s.cfg.tunnelId, s.cfg.sessionId, now);
  }

  /** A UDP payload received on tunnel `t`. */
  rxUdp(t: Tunnel, buf: Buffer, off: number, len: number): void {
    captureOne(this.ring, buf, off, len, DIR_RX, ENCAP_UDP, t.cfg.tunnelId, len >= 8 ? buf.readUInt32BE(off + 4) : 0, performance.timeOrigin + performance.now());
  }

  /** A raw IP packet after the IP header (tunnel unknown: 0). */
  rxIp(buf: Buffer, off: number, len: number): void {
    captureOne(this.ring, buf, off, len, DIR_RX, ENCAP_IP, 0, len >= 4 ? buf.readUInt32BE(off) : 0, performance.timeOrigin + performance.now());
  }
}
