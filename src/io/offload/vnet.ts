/**
 * struct virtio_net_hdr (10 bytes, little-endian on the hosts we run on), as
 * read from and written to a TAP opened with IFF_VNET_HDR (include/uapi/linux/virtio_net.h):
 *
 *   u8 flags; u8 gso_type; u16 hdr_len; u16 gso_size; u16 csum_start; u16 csum_offset;
 *
 * Pure accessors: no allocation, no throwing.
 */

export const VNET_HDR_LEN = 10;

/** flags */
export const VNET_F_NEEDS_CSUM = 1;
export const VNET_F_DATA_VALID = 2;

/** gso_type */
export const GSO_NONE = 0;
export const GSO_TCPV4 = 1;
export const GSO_UDP = 3;
export const GSO_TCPV6 = 4;
export const GSO_UDP_L4 = 5;
export const GSO_ECN = 0x80;

/** One parsed header; reuse one instance (fields are overwritten by parseVnet). */
export class VnetHdr {
  flags = 0;
  gsoType = 0;
  hdrLen = 0;
  gsoSize = 0;
  csumStart = 0;
  csumOffset = 0;
}

/** Reads the header at buf[off]; false when fewer than VNET_HDR_LEN bytes are there. */
export function parseVnet(buf: Uint8Array, off: number, len: number, h: VnetHdr): boolean {
  if (len < VNET_HDR_LEN || off < 0 || off + VNET_HDR_LEN > buf.length) return false;
  h.flags = buf[off]!;
  h.gsoType = buf[off + 1]!;
  h.hdrLen = buf[off + 2] | (buf[off + 3] << 8);
  h.gsoSize = buf[off + 4] | (buf[off + 5] << 8);
  h.csumStart = buf[off + 6] | (buf[off + 7] << 8);
  h.csumOffset = buf[off + 8] | (buf[off + 9] << 8);
  return true;
}

/** Writes a header at buf[off]. */
export function emitVnet(
  buf: Uint8Array,
  off: number,
  flags: number,
  gsoType: number,
  hdrLen: number,
  gsoSize: number,
  csumStart: number,
  csumOffset: number,
): void {
  buf[off] = flags;
  buf[off + 1] = gsoType;
  buf[off + 2] = hdrLen & 0xff;
  buf[off + 3] = hdrLen >>> 8;
  buf[off + 4] = gsoSize & 0xff;
  buf[off + 5] = gsoSize >>> 8;
  buf[off + 6] = csumStart & 0xff;
  buf[off + 7] = csumStart >>> 8;
  buf[off + 8] = csumOffset & 0xff;
  buf[off + 9] = csumOffset >>> 8;
}

/** Writes an all-zero header (an ordinary, complete frame). */
export function emitVnetNone(buf: Uint8Array, off: number): void {
  for (let i = 0; i < VNET_HDR_LEN; i++) buf[off + i] = 0;
}
