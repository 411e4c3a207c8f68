/**
 * UDP GSO sends for the koffi UDP tunnel socket (sockets.ts): runs of equal-sized packets
 * (the last may be shorter) leave as one sendmsg with a UDP_SEGMENT control message; each
 * segment is still one ordinary L2TP packet on the wire. The kernel refuses UDP_SEGMENT on
 * sockets with SO_NO_CHECK, so only tunnels that send UDP checksums use it. Its own
 * mmsghdr/iovec/cmsg arrays point into the caller's batch. One instance per thread.
 * No allocation, no throwing.
 */
import { MMSGHDR_SIZE, type Batch } from './batch.js';
import { libc, SOL_UDP, UDP_SEGMENT, type Libc } from './libc.js';

/** Segments per GSO send (the kernel's UDP_MAX_SEGMENTS is 64 on older kernels). */
const GSO_MAX_SEGS = 64;
/** Bytes per GSO send (UDP payload; the IPv4 limit is 65507). */
const GSO_MAX_BYTES = 65000;
const CMSG_SPACE_U16 = 24; // CMSG_SPACE(2) on LP64
const TWO32 = 4294967296;

/** Messages per call (each up to GSO_MAX_SEGS packets). */
const GSO_MSGS = 128;
/** Packets per call (iovecs). */
const GSO_IOVS = 256;

export class GsoSender {
  private readonly c: Libc;
  private readonly mem: ArrayBuffer;
  private readonly w: Uint32Array;
  private readonly memBase: number;
  private readonly iovOff: number;
  private readonly cmsgOff: number;
  /** Per message: slot count. */
  private readonly count: Uint32Array;
  /** GSO sends made (two or more segments) and segments sent in them. */
  sends = 0;
  segments = 0;

  constructor(private readonly n = GSO_MSGS) {
    this.c = libc();
    this.iovOff = n * MMSGHDR_SIZE;
    this.cmsgOff = this.iovOff + GSO_IOVS * 16;
    this.mem = new ArrayBuffer(this.cmsgOff + n * CMSG_SPACE_U16);
    this.w = new Uint32Array(this.mem);
    this.memBase = this.c.addressOf(this.mem);
    this.count = new Uint32Array(n);
    for (let g = 0; g < n; g++) {
      const c = (this.cmsgOff + g * CMSG_SPACE_U16) >>> 2;
      this.w[c] = 18; // cmsg_len = CMSG_LEN(2)
      this.w[c + 1] = 0;
      this.w[c + 2] = SOL_UDP;
      this.w[c + 3] = UDP_SEGMENT;
    }
  }

  private put64(word: number, v: number): void {
    this.w[word] = v >>> 0;
    this.w[word + 1] = Math.floor(v / TWO32);
  }

  /**
   * One sendmmsg of slots [first, first + n) of `b` on the connected socket `fd`, grouped
   * into GSO messages. Returns how many slots were accepted (whole messages, in order), or
   * -errno when the first message failed (-EINVAL / -EIO: the socket refuses GSO).
   */
  send(b: Batch, fd: number, first: number, n: number): number {
    const ss = b.slotSize;
    const w = this.w;
    let msgs = 0;
    let i = first;
    const end = first + n;
    let iov = 0;
    while (i < end && msgs < this.n && iov < GSO_IOVS) {
      const size = b.len[i];
      let k = 1;
      let bytes = size;
      while (i + k < end && k < GSO_MAX_SEGS && iov + k < GSO_IOVS) {
        const l = b.len[i + k];
        if (l > size || bytes + l > GSO_MAX_BYTES) break;
        k++;
        bytes += l;
        if (l < size) break; // a shorter packet ends the run
      }
      const m = (msgs * MMSGHDR_SIZE) >>> 2;
      w[m] = 0; // msg_name
      w[m + 1] = 0;
      w[m + 2] = 0; // msg_namelen
      this.put64(m + 4, this.memBase + this.iovOff + iov * 16); // msg_iov
      w[m + 6] = k; // msg_iovlen
      w[m + 7] = 0;
      if (k > 1) {
        this.put64(m + 8, this.memBase + this.cmsgOff + msgs * CMSG_SPACE_U16); // msg_control
        w[m + 10] = CMSG_SPACE_U16; // msg_controllen
        w[((this.cmsgOff + msgs * CMSG_SPACE_U16) >>> 2) + 4] = size; // gso_size (u16, little-endian)
      } else {
        w[m + 8] = 0;
        w[m + 9] = 0;
        w[m + 10] = 0;
      }
      w[m + 11] = 0;
      w[m + 12] = 0; // msg_flags
      for (let j = 0; j < k; j++) {
        const v = (this.iovOff >>> 2) + (iov + j) * 4;
        this.put64(v, b.base + (i + j) * ss + b.off[i + j]);
        w[v + 2] = b.len[i + j]!;
        w[v + 3] = 0;
      }
      this.count[msgs] = k;
      iov += k;
      msgs++;
      i += k;
    }
    const r = this.c.sendmmsg(fd, this.memBase, msgs, 0);
    if (r < 0) return -this.c.errno();
    let slots = 0;
    for (let g = 0; g < r; g++) {
      const k = this.count[g];
      slots += k;
      if (k > 1) {
        this.sends++;
        this.segments += k;
      }
    }
    return slots;
  }
}
