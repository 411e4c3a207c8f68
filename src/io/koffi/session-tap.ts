/**
 * Opening a session TAP for the offload path (control path, main thread).
 *
 * Offload on: IFF_VNET_HDR, TUNSETVNETHDRSZ 10, TUNSETOFFLOAD CSUM|TSO4|TSO6: the kernel
 * hands us TCP super-frames (up to 64 KB) and partial checksums, and takes super-frames
 * from us. When the kernel refuses (no IFF_VNET_HDR, or TUNSETOFFLOAD fails) the TAP is
 * opened the plain way and the session runs per frame.
 *
 * Offload off: a plain TAP, and the TAP's offload features are cleared (an adopted
 * persistent TAP may still have them from a daemon that ran with offloads on; frames
 * without a virtio_net_hdr must never be super-frames).
 */
import { closeFd } from './epoll.js';
import {
  openTap,
  SESSION_TAP_ALIAS,
  setOffload,
  setVnetHdrSize,
  TUN_F_CSUM,
  TUN_F_TSO4,
  TUN_F_TSO6,
  type TapHandle,
} from './tap.js';
import { VNET_HDR_LEN } from '../offload/vnet.js';

/** Offloads we ask for: checksums, TCP segmentation for IPv4 and IPv6. */
export const OFFLOAD_FLAGS = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;

export interface SessionTap extends TapHandle {
  /** True when frames carry a virtio_net_hdr and offloads are on. */
  offload: boolean;
}

/** Opens (or adopts) the persistent, nonblocking session TAP `name`. Throws like openTap. */
export function openSessionTap(name: string, offload: boolean): SessionTap {
  let real = name;
  if (offload) {
    const t = openTap(name, { persist: true, nonBlocking: true, vnetHdr: true, alias: SESSION_TAP_ALIAS });
    try {
      setVnetHdrSize(t.fd, VNET_HDR_LEN);
      setOffload(t.fd, OFFLOAD_FLAGS);
      return { ...t, offload: true };
    } catch {
      // Kernel without these offloads: reopen the plain way (same device, persistent).
      closeFd(t.fd);
      real = t.name;
    }
  }
  const t = openTap(real, { persist: true, nonBlocking: true, alias: SESSION_TAP_ALIAS });
  try {
    setOffload(t.fd, 0);
  } catch {
    /* nothing to clear */
  }
  return { ...t, offload: false };
}
