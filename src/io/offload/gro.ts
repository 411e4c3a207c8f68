/**
 * Receive side of the offload path: GRO-style coalescing of the frames one receive batch
 * delivers to session TAPs opened with IFF_VNET_HDR.
 *
 * Consecutive TCP segments of one flow are merged into one super-frame written with a
 * virtio_net_hdr (gso_type TCPV4/TCPV6, gso_size = the first segment's payload), following
 * the kernel's tcp_gro_receive and wireguard-go's tcpGRO rules:
 *   - same TAP, same Ethernet addresses, same IP addresses and TCP ports;
 *   - IPv4 without options or fragmentation, ids incrementing by one, same TOS/TTL/DF;
 *     IPv6 without extension headers, same traffic class/flow label/hop limit;
 *   - TCP flags exactly ACK (PSH allowed, and then it ends the super-frame), no
 *     SYN/FIN/RST/URG/ECE/CWR, same ack number, window, header length and options;
 *   - sequence numbers contiguous; every payload equal to the first's except a shorter last;
 *   - at most MAX_SEGS segments and 65535 bytes of IP payload (IPv4 total length);
 *   - every merged segment's IPv4 header checksum verified first.
 *
 * Checksums: the inner TCP checksum is the only end-to-end check when the tunnel runs
 * without UDP checksums, so it is not vouched for. The super-frame's TCP checksum is
 * derived from the segments' own checksum fields without reading the payload (each
 * segment's payload sum = -(pseudo-header + TCP header including its checksum field)) and
 * the frame is written without NEEDS_CSUM / DATA_VALID: the kernel verifies it over the whole
 * super-frame (in C), so a segment damaged on the way makes the whole super-frame fail
 * there, exactly as it would have failed on its own.
 * Everything else is written as it came, behind an all-zero virtio_net_hdr. A non-mergeable
 * TCP frame of a held flow (pure ACK, FIN, gap, ...) first flushes that flow, so the order
 * within a flow is kept; frames of other flows may overtake held ones, as with GRO.
 *
 * Frames held by reference (`inPlace`: the caller's receive slab, with at least
 * VNET_HDR_LEN bytes in front of the frame that a write may borrow and puts back) stay valid
 * only until `flush()` or `detach()`, one of which the caller runs at the end of every receive
 * batch (detach lets one-segment flows grow over several batches; flush at the end of the
 * wake-up).
 *
 * Output: with a plain `TapWrite` every frame is written at once (an in-place frame borrows
 * the bytes in front of it for its virtio_net_hdr). With a `TapQueue` frames are queued as
 * iovecs — a shared all-zero virtio_net_hdr and the frame where it lies; or a super-frame's
 * patched headers from the flow's storage and each payload where it lies in the slab, so a
 * flow whose segments all arrived in the slab is never copied — and written in order at the
 * end of the receive batch (`detach`/`flush`), possibly all in one system call. Memory a
 * queued frame names is not reused before that. No allocation after construction, no
 * throwing.
 */
import { csumAdd, finish, fold, ipv4HeaderCsum, ipv4HeaderOk, pseudo4, pseudo6 } from './csum.js';
import { GSO_TCPV4, GSO_TCPV6, VNET_HDR_LEN, emitVnet, emitVnetNone } from './vnet.js';

/** write(2) of buf[off, off+len) to a TAP fd: bytes written or -errno. */
export type TapWrite = (fd: number, buf: Buffer, off: number, len: number) => number;

/**
 * Queued TAP writes (optional; see the class comment): each frame is begun with its TAP, its
 * session's stats slot and how many segments it carries (what a failed write counts as
 * dropped: stats[base + drop index] += nseg), then given as pieces (address, length), at most
 * MAX_SEGS + 2 of them. `sync()` writes every queued frame, in order; until it returns, the
 * memory the pieces name must stay as it is.
 */
export interface TapQueue {
  /** Address of a long-lived buffer's first byte. */
  address(buf: Buffer): number;
  begin(fd: number, base: number, nseg: number): void;
  piece(addr: number, len: number): void;
  sync(): void;
  /** Frames queued and not yet written. */
  readonly queued: number;
}

export const MAX_SEGS = 64;
/** Largest frame we build: Ethernet + IPv6 + TCP with options + 64 KiB. */
const FRAME_MAX = 14 + 40 + 60 + 65535;
const TCP_ACK = 0x10;
const TCP_PSH = 0x08;

class Flow {
  fd = -1;
  base = 0;
  /** Where the first segment's frame is while not copied (the caller's slab). */
  src: Buffer;
  srcOff = 0;
  copied = false;
  /** Own storage: virtio_net_hdr at `so`, frame at so + VNET_HDR_LEN. */
  readonly store: Buffer;
  readonly so: number;
  /** Largest frame the storage takes. */
  readonly room: number;
  frameLen = 0;
  l4 = 0;
  hdrLen = 0;
  v6 = false;
  mss = 0;
  nseg = 0;
  nextSeq = 0;
  lastId = 0;
  closed = false;
  psh = false;
  /** A queued write names this flow's storage (TapQueue): sync before reusing it. */
  queued = false;
  /** Ones'-complement sum of the payload so far (derived from the segments' checksums). */
  paySum = 0;
  payLen = 0;
  /** Gathered (not copied) flows: payloads of segments 2.. in place, pieces [0, np). */
  np = 0;
  readonly pBuf: Buffer[] = [];
  readonly pOff = new Int32Array(MAX_SEGS);
  readonly pLen = new Int32Array(MAX_SEGS);
  constructor(store: Buffer, so: number, room: number) {
    this.store = store;
    this.so = so;
    this.room = room;
    this.src = store;
    for (let i = 0; i < MAX_SEGS; i++) this.pBuf.push(store);
  }
}

/** Copy without allocating when both ranges are in one buffer (Buffer.copy makes a view). */
function copyBytes(src: Buffer, from: number, to: number, dst: Buffer, at: number): void {
  if (src === dst) dst.copyWithin(at, from, to);
  else src.copy(dst, at, from, to);
}

// classify() results
const C_OTHER = 0;
const C_TCP = 1;
const C_MERGEABLE = 2;

export class Coalescer {
  /** Segments merged into an earlier one. */
  merged = 0;
  /** Super-frames written (two or more segments). */
  superFrames = 0;
  /** Frames written on their own. */
  single = 0;
  /** Writes that failed (counted into stats[base + dropIdx] per segment). */
  writeErrors = 0;

  private readonly pool: Flow[] = [];
  /** Held flows in start order: act[0, nAct). */
  private readonly act: Flow[] = [];
  private nAct = 0;
  private readonly scratch: Buffer;
  /** The bytes an in-place write borrows in front of its frame, put back after it. */
  private readonly saved = new Uint8Array(VNET_HDR_LEN);
  /** TapQueue mode: the all-zero virtio_net_hdr every plain frame is queued behind. */
  private readonly zeroHdr = Buffer.alloc(16);
  /** TapQueue mode: a queued write names `scratch`. */
  private scratchQueued = false;
  // classify() outputs
  private cL4 = 0;
  private cHdr = 0;
  private cFrame = 0;
  private cPay = 0;
  private cV6 = false;

  /**
   * `arena` (optional): flow storage inside the caller's receive slab, `maxFlows` regions of
   * `arenaStride` bytes from `arenaOff` (each at least VNET_HDR_LEN + 14 + 65535 bytes), so that
   * payloads are moved with copyWithin, which allocates nothing. Default: own buffers.
   */
  constructor(
    private readonly write: TapWrite,
    private readonly stats: Float64Array,
    private readonly dropIdx: number,
    maxFlows = 8,
    arena?: Buffer,
    arenaOff = 0,
    arenaStride = 0,
    private readonly out: TapQueue | null = null,
  ) {
    for (let i = 0; i < maxFlows; i++) {
      const f = arena
        ? new Flow(arena, arenaOff + i * arenaStride, arenaStride - VNET_HDR_LEN)
        : new Flow(Buffer.alloc(VNET_HDR_LEN + FRAME_MAX), 0, FRAME_MAX);
      this.pool.push(f);
      this.act.push(f);
    }
    this.scratch = Buffer.alloc(VNET_HDR_LEN + FRAME_MAX + 64);
  }

  /** Flows currently held. */
  get held(): number {
    return this.nAct;
  }

  /** Flows held plus frames queued: nonzero when `detach()`/`flush()` has work. */
  get pending(): number {
    return this.out === null ? this.nAct : this.nAct + this.out.queued;
  }

  /**
   * One received frame for the TAP `fd` (session stats slot `base`). `inPlace`: buf is the
   * receive slab, valid until flush(), with VNET_HDR_LEN writable bytes before `off`.
   */
  add(fd: number, base: number, buf: Buffer, off: number, len: number, inPlace: boolean): void {
    const k = this.classify(buf, off, len);
    if (k === C_OTHER) {
      this.writeOne(fd, base, buf, off, len, inPlace);
      return;
    }
    const i = this.find(fd, buf, off);
    if (k === C_TCP) {
      if (i >= 0) this.flushAt(i);
      this.writeOne(fd, base, buf, off, len, inPlace);
      return;
    }
    if (i >= 0) {
      const f = this.act[i];
      if (this.canMerge(f, buf, off)) {
        this.merge(f, buf, off, inPlace);
        return;
      }
      this.flushAt(i);
    }
    this.start(fd, base, buf, off, inPlace);
  }

  /**
   * End of a receive batch when more may follow before `flush()`: no flow may point into the
   * caller's slab afterwards. A gathered super-frame is written from where it lies (copying
   * it would cost more than the extra write it might save); a flow of one segment held by
   * reference is copied into its own storage and keeps growing across batches.
   */
  detach(): void {
    let i = 0;
    while (i < this.nAct) {
      const f = this.act[i];
      if (f.copied) i++;
      else if (f.np > 0) this.flushAt(i);
      else {
        this.materialize(f);
        i++;
      }
    }
    this.sync();
  }

  /** Writes every held flow (and everything queued). */
  flush(): void {
    for (let i = 0; i < this.nAct; i++) this.emit(this.act[i]);
    this.nAct = 0;
    this.sync();
  }

  /** TapQueue mode: writes what is queued; every flow's storage and the scratch are free again. */
  private sync(): void {
    const out = this.out;
    if (out === null) return;
    if (out.queued !== 0) out.sync();
    const pool = this.pool;
    for (let i = 0; i < pool.length; i++) pool[i].queued = false;
    this.scratchQueued = false;
  }

  // ---------------------------------------------------------------- internals

  private classify(buf: Buffer, off: number, len: number): number {
    if (len < 54) return C_OTHER;
    const et = (buf[off + 12] << 8) | buf[off + 13];
    let l4: number;
    let frame: number;
    if (et === 0x0800) {
      if (buf[off + 14] !== 0x45 || buf[off + 23] !== 6) return C_OTHER;
      if ((((buf[off + 20] << 8) | buf[off + 21]) & 0x3fff) !== 0) return C_OTHER;
      const tot = (buf[off + 16] << 8) | buf[off + 17];
      if (tot < 40 || 14 + tot > len) return C_OTHER;
      l4 = 34;
      frame = 14 + tot;
      this.cV6 = false;
    } else if (et === 0x86dd) {
      if (len < 74 || buf[off + 14] >> 4 !== 6 || buf[off + 20] !== 6) return C_OTHER;
      const plen = (buf[off + 18] << 8) | buf[off + 19];
      if (plen < 20 || 54 + plen > len) return C_OTHER;
      l4 = 54;
      frame = 54 + plen;
      this.cV6 = true;
    } else {
      return C_OTHER;
    }
    const doff = (buf[off + l4 + 12] >> 4) << 2;
    if (doff < 20 || l4 + doff > frame) return C_OTHER;
    this.cL4 = l4;
    this.cHdr = l4 + doff;
    this.cFrame = frame;
    this.cPay = frame - l4 - doff;
    const flags = buf[off + l4 + 13];
    if (this.cPay === 0 || (flags & ~TCP_PSH) !== TCP_ACK || (buf[off + l4 + 12] & 0x0f) !== 0) return C_TCP;
    if (!this.cV6 && !ipv4HeaderOk(buf, off + 14, 20)) return C_TCP;
    return C_MERGEABLE;
  }

  /** Index in act[] of the held flow with the same TAP, addresses and ports; -1 if none. */
  private find(fd: number, buf: Buffer, off: number): number {
    const v6 = this.cV6;
    const l4 = this.cL4;
    for (let i = 0; i < this.nAct; i++) {
      const f = this.act[i];
      if (f.fd !== fd || f.v6 !== v6) continue;
      const hb = f.copied ? f.store : f.src;
      const ho = f.copied ? f.so + VNET_HDR_LEN : f.srcOff;
      if (hb[ho + l4] !== buf[off + l4] || hb[ho + l4 + 1] !== buf[off + l4 + 1] || hb[ho + l4 + 2] !== buf[off + l4 + 2] || hb[ho + l4 + 3] !== buf[off + l4 + 3]) continue;
      const a = v6 ? 22 : 26;
      const n = v6 ? 32 : 8;
      let same = true;
      for (let j = 0; j < n; j++) {
        if (hb[ho + a + j] !== buf[off + a + j]) {
          same = false;
          break;
        }
      }
      if (same) return i;
    }
    return -1;
  }

  /**
   * The payload's ones'-complement sum of the segment at b[o] as its sender computed it:
   * -(pseudo-header + TCP header including the checksum field). Reads headers only.
   */
  private paySumOf(b: Buffer, o: number): number {
    const l4 = this.cL4;
    const tcpLen = this.cFrame - l4;
    const ps = this.cV6 ? pseudo6(b, o + 14, 6, tcpLen) : pseudo4(b, o + 14, 6, tcpLen);
    return ~csumAdd(b, o + l4, this.cHdr - l4, ps) & 0xffff;
  }

  private canMerge(f: Flow, buf: Buffer, off: number): boolean {
    if (f.closed || f.nseg >= MAX_SEGS) return false;
    const l4 = this.cL4;
    const pay = this.cPay;
    if (this.cHdr !== f.hdrLen || pay > f.mss) return false;
    if (f.frameLen - 14 + pay > 65535 || f.frameLen + pay > f.room) return false;
    const seq = ((buf[off + l4 + 4] << 24) | (buf[off + l4 + 5] << 16) | (buf[off + l4 + 6] << 8) | buf[off + l4 + 7]) >>> 0;
    if (seq !== f.nextSeq) return false;
    const hb = f.copied ? f.store : f.src;
    const ho = f.copied ? f.so + VNET_HDR_LEN : f.srcOff;
    // Ethernet addresses
    for (let j = 0; j < 12; j++) if (hb[ho + j] !== buf[off + j]) return false;
    if (!f.v6) {
      if (hb[ho + 15] !== buf[off + 15] || hb[ho + 20] !== buf[off + 20] || hb[ho + 22] !== buf[off + 22]) return false;
      const id = (buf[off + 18] << 8) | buf[off + 19];
      if (id !== ((f.lastId + 1) & 0xffff)) return false;
    } else {
      for (let j = 14; j < 18; j++) if (hb[ho + j] !== buf[off + j]) return false;
      if (hb[ho + 21] !== buf[off + 21]) return false;
    }
    // ack number, data offset, flags (PSH aside), window, options
    for (let j = l4 + 8; j < l4 + 13; j++) if (hb[ho + j] !== buf[off + j]) return false;
    if ((hb[ho + l4 + 13] & ~TCP_PSH) !== (buf[off + l4 + 13] & ~TCP_PSH)) return false;
    if (hb[ho + l4 + 14] !== buf[off + l4 + 14] || hb[ho + l4 + 15] !== buf[off + l4 + 15]) return false;
    for (let j = l4 + 20; j < f.hdrLen; j++) if (hb[ho + j] !== buf[off + j]) return false;
    return true;
  }

  /**
   * Copies a flow held by reference (its first frame and any gathered payloads) into its own
   * storage, headers first and payloads after them in order.
   */
  private materialize(f: Flow): void {
    const F = f.so + VNET_HDR_LEN;
    const first = f.hdrLen + f.mss;
    copyBytes(f.src, f.srcOff, f.srcOff + first, f.store, F);
    let at = F + first;
    for (let k = 0; k < f.np; k++) {
      const o = f.pOff[k];
      copyBytes(f.pBuf[k], o, o + f.pLen[k], f.store, at);
      at += f.pLen[k];
    }
    f.np = 0;
    f.copied = true;
    f.src = f.store;
  }

  private merge(f: Flow, buf: Buffer, off: number, inPlace: boolean): void {
    const pay = this.cPay;
    const at = off + this.cHdr;
    if (!f.copied && inPlace && this.out !== null) {
      // still all in the receive slab: remember where the payload is, copy nothing
      const k = f.np++;
      f.pBuf[k] = buf;
      f.pOff[k] = at;
      f.pLen[k] = pay;
    } else {
      if (!f.copied) this.materialize(f);
      copyBytes(buf, at, at + pay, f.store, f.so + VNET_HDR_LEN + f.frameLen);
    }
    const d = this.paySumOf(buf, off);
    // a piece that starts at an odd offset of the merged payload contributes byte-swapped
    f.paySum += (f.payLen & 1) === 0 ? d : ((d >>> 8) | ((d & 0xff) << 8));
    f.payLen += pay;
    f.frameLen += pay;
    f.nseg++;
    f.nextSeq = (f.nextSeq + pay) >>> 0;
    if (!f.v6) f.lastId = (buf[off + 18] << 8) | buf[off + 19];
    const psh = (buf[off + this.cL4 + 13] & TCP_PSH) !== 0;
    if (psh) f.psh = true;
    if (psh || pay < f.mss) f.closed = true;
    this.merged++;
  }

  private start(fd: number, base: number, buf: Buffer, off: number, inPlace: boolean): void {
    if (this.cFrame > this.act[0].room) {
      this.writeOne(fd, base, buf, off, this.cFrame, inPlace);
      return;
    }
    if (this.nAct === this.act.length) this.flushAt(0);
    // act holds every pool member; [nAct, end) are free. Take a free flow whose storage no
    // queued write names, so that the queue keeps growing; if there is none, write it first.
    const act = this.act;
    const n0 = this.nAct;
    for (let i = n0; i < act.length; i++) {
      if (!act[i].queued) {
        const t = act[i];
        act[i] = act[n0];
        act[n0] = t;
        break;
      }
    }
    const f = act[this.nAct++];
    if (f.queued) this.sync();
    f.fd = fd;
    f.base = base;
    f.v6 = this.cV6;
    f.l4 = this.cL4;
    f.hdrLen = this.cHdr;
    f.frameLen = this.cFrame;
    f.mss = this.cPay;
    f.nseg = 1;
    const l4 = this.cL4;
    const seq = ((buf[off + l4 + 4] << 24) | (buf[off + l4 + 5] << 16) | (buf[off + l4 + 6] << 8) | buf[off + l4 + 7]) >>> 0;
    f.nextSeq = (seq + this.cPay) >>> 0;
    f.lastId = f.v6 ? 0 : (buf[off + 18] << 8) | buf[off + 19];
    f.psh = (buf[off + l4 + 13] & TCP_PSH) !== 0;
    f.closed = f.psh;
    f.paySum = this.paySumOf(buf, off);
    f.payLen = this.cPay;
    f.np = 0;
    if (inPlace) {
      f.src = buf;
      f.srcOff = off;
      f.copied = false;
    } else {
      copyBytes(buf, off, off + this.cFrame, f.store, f.so + VNET_HDR_LEN);
      f.copied = true;
    }
  }

  /** Writes act[i] and removes it, keeping the start order of the others. */
  private flushAt(i: number): void {
    const f = this.act[i];
    this.emit(f);
    const last = this.nAct - 1;
    for (let j = i; j < last; j++) this.act[j] = this.act[j + 1]!;
    this.act[last] = f;
    this.nAct = last;
  }

  private emit(f: Flow): void {
    if (f.nseg === 1) {
      if (f.copied) {
        this.writeOne(f.fd, f.base, f.store, f.so + VNET_HDR_LEN, f.frameLen, true);
        if (this.out !== null) f.queued = true;
      } else this.writeOne(f.fd, f.base, f.src, f.srcOff, f.frameLen, true);
      f.src = f.store;
      return;
    }
    const b = f.store;
    const F = f.so + VNET_HDR_LEN;
    // gathered: the headers are patched in the flow's storage, the payloads stay where they are
    const gathered = !f.copied;
    if (gathered) copyBytes(f.src, f.srcOff, f.srcOff + f.hdrLen, b, F);
    const l3 = F + 14;
    const l4 = F + f.l4;
    const tcpLen = f.frameLen - f.l4;
    let ps: number;
    if (!f.v6) {
      const tot = f.frameLen - 14;
      b[l3 + 2] = tot >>> 8;
      b[l3 + 3] = tot & 0xff;
      ipv4HeaderCsum(b, l3, 20);
      ps = pseudo4(b, l3, 6, tcpLen);
    } else {
      b[l3 + 4] = tcpLen >>> 8;
      b[l3 + 5] = tcpLen & 0xff;
      ps = pseudo6(b, l3, 6, tcpLen);
    }
    if (f.psh) b[l4 + 13] = b[l4 + 13] | TCP_PSH;
    b[l4 + 16] = 0;
    b[l4 + 17] = 0;
    const c = finish(csumAdd(b, l4, f.hdrLen - f.l4, ps) + fold(f.paySum));
    b[l4 + 16] = c >>> 8;
    b[l4 + 17] = c & 0xff;
    emitVnet(b, f.so, 0, f.v6 ? GSO_TCPV6 : GSO_TCPV4, f.hdrLen, f.mss, 0, 0);
    const out = this.out;
    if (out !== null) {
      out.begin(f.fd, f.base, f.nseg);
      const sa = out.address(b);
      if (gathered) {
        out.piece(sa + f.so, VNET_HDR_LEN + f.hdrLen);
        out.piece(out.address(f.src) + f.srcOff + f.hdrLen, f.mss);
        for (let k = 0; k < f.np; k++) out.piece(out.address(f.pBuf[k]) + f.pOff[k], f.pLen[k]);
        f.np = 0;
      } else out.piece(sa + f.so, VNET_HDR_LEN + f.frameLen);
      f.queued = true;
    } else if (this.write(f.fd, b, f.so, VNET_HDR_LEN + f.frameLen) < 0) {
      this.writeErrors++;
      this.stats[f.base + this.dropIdx] += f.nseg;
    }
    this.superFrames++;
    f.src = f.store;
  }

  /**
   * One frame behind an all-zero virtio_net_hdr; `inPlace`: VNET_HDR_LEN bytes before off may
   * be borrowed. They are put back after the write: in a UDP GRO run an L2TP header can be
   * shorter than the virtio_net_hdr (8 bytes: no cookie, no L2-specific sublayer), and the
   * bytes in front of it are then the tail of the previous datagram's frame, which a flow
   * may hold in place.
   */
  private writeOne(fd: number, base: number, buf: Buffer, off: number, len: number, inPlace: boolean): void {
    const out = this.out;
    if (out !== null) {
      this.single++;
      let at: number;
      if (inPlace) at = out.address(buf) + off;
      else {
        // valid during this call only (a reorder-queue release): queued from the scratch
        if (this.scratchQueued) this.sync();
        const s = this.scratch;
        if (len > s.length) len = s.length;
        buf.copy(s, 0, off, off + len);
        at = out.address(s);
        this.scratchQueued = true;
      }
      out.begin(fd, base, 1);
      out.piece(out.address(this.zeroHdr), VNET_HDR_LEN);
      out.piece(at, len);
      return;
    }
    let r: number;
    if (inPlace && off >= VNET_HDR_LEN) {
      const at = off - VNET_HDR_LEN;
      const saved = this.saved;
      for (let i = 0; i < VNET_HDR_LEN; i++) saved[i] = buf[at + i];
      emitVnetNone(buf, at);
      r = this.write(fd, buf, at, len + VNET_HDR_LEN);
      for (let i = 0; i < VNET_HDR_LEN; i++) buf[at + i] = saved[i];
    } else {
      const s = this.scratch;
      const n = len < s.length - VNET_HDR_LEN ? len : s.length - VNET_HDR_LEN;
      emitVnetNone(s, 0);
      buf.copy(s, VNET_HDR_LEN, off, off + n);
      r = this.write(fd, s, 0, n + VNET_HDR_LEN);
    }
    this.single++;
    if (r < 0) {
      this.writeErrors++;
      this.stats[base + this.dropIdx]++;
    }
  }
}
