/**
 * The 10-byte virtio_net_hdr that a macvtap prepends to every frame read
 * (IFF_VNET_HDR is on by default and only an ioctl turns it off); layout and
 * checksum completion are shared with the koffi offload path
 * (src/io/offload/vnet.ts, tso.ts `completeCsum`). Writes start with 10 zero bytes.
 */
import { completeCsum } from '../src/io/offload/tso.js';
import { GSO_NONE, VNET_F_NEEDS_CSUM, VNET_HDR_LEN } from '../src/io/offload/vnet.js';

export { VNET_HDR_LEN };
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
export function finishFrame(buf: Buffer, p: number, n: number): number {
  const len = n - VNET_HDR_LEN;
  if (len < 0) return FRAME_DROP;
  if (buf[p + 1] !== GSO_NONE) return FRAME_DROP;
  if ((buf[p] & VNET_F_NEEDS_CSUM) !== 0) {
    const start = buf[p + 6] | (buf[p + 7] << 8);
    const off = buf[p + 8] | (buf[p + 9] << 8);
    if (!completeCsum(buf, p + VNET_HDR_LEN, len, start, off)) return FRAME_DROP;
  }
  return len;
}
