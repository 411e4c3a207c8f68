/**
 * The 10-byte virtio_net_hdr that a macvtap prepends to every frame read
 * (IFF_VNET_HDR is on by default and only an ioctl turns it off):
 *   u8 flags, u8 gso_type, u16 hdr_len, u16 gso_size, u16 csum_start, u16 csum_offset
 * (little-endian on the machines we run on). Writes start with 10 zero bytes.
 */
export const VNET_HDR_LEN = 10;
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
/** Returned by finishFrame for frames that must be dropped (counted as tx errors). */
export const FRAME_DROP = -1;

/**
 * Check and finish a frame read at buf[p, p + n) (virtio_net_hdr + frame);
 * returns the frame length (the frame starts at p + 10) or FRAME_DROP.
 *
 * - gso_type != NONE: a super-frame we would have to segment. The session
 *   interface has gso_max_segs 1, so the stack segments before it; drop.
 * - NEEDS_CSUM: the veth has checksum offload (only ethtool turns it off),
 *   so the stack left the pseudo-header sum in the field at
 *   csum_start + csum_offset; finish it over [csum_start, end) like
 *   skb_checksum_help. Allocation-free.
 */
export function finishFrame(buf: Buffer, dv: DataView, p: number, n: number): number {
  const len = n - VNET_HDR_LEN;
  if (len < 0) return FRAME_DROP;
  if (buf[p + 1] !== 0) return FRAME_DROP;
  if ((buf[p] & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0) {
    const start = buf[p + 6] | (buf[p + 7] << 8);
    const field = start + (buf[p + 8] | (buf[p + 9] << 8));
    if (field + 2 > len) return FRAME_DROP;
    const f = p + VNET_HDR_LEN;
    const end = f + len;
    // one's-complement sum of 32-bit words (exact in a double), folded to 16 bits
    let sum = 0;
    let i = f + start;
    const off = dv.byteOffset - buf.byteOffset;
    for (; i + 3 < end; i += 4) sum += dv.getUint32(i - off);
    sum = (sum % 65536) + Math.floor(sum / 65536);
    for (; i + 1 < end; i += 2) sum += (buf[i] << 8) | buf[i + 1];
    if (i < end) sum += buf[i] << 8;
    while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 65536);
    let c = ~sum & 0xffff;
    if (c === 0) c = 0xffff; // CSUM_MANGLED_0: a computed 0 is sent as 0xffff (0 = "no checksum" for UDP)
    buf[f + field] = c >>> 8;
    buf[f + field + 1] = c & 0xff;
  }
  return len;
}
