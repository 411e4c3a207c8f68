/**
 * Per-session header layout, computed once at configuration time (the
 * kernel's hdr_len, QEMU's precomputed offsets). Encap and decap then use
 * fixed offsets: which optional fields exist is configuration, never
 * signalled in the packet (SPEC.md §1.1).
 */
import type { Encap, L2specType } from './config.js';
import { cookieOffset, l2specOffset, l2tpHeaderLen, L2TP_UDP_HDR_LEN } from '../wire/l2tpv3.js';
import { L2SPEC_LEN } from '../wire/sublayer.js';

export interface SessionLayout {
  /** Whole L2TP header: session header + cookie + sublayer. The frame starts here. */
  readonly hdrLen: number;
  /** Offset of the cookie from the start of the L2TP header. */
  readonly cookieOff: number;
  readonly cookieLen: number;
  /** Offset of the default sublayer, -1 = l2spec none. */
  readonly l2specOff: number;
}

/** Largest L2TP header: UDP (8) + cookie 8 + sublayer 4. */
export const MAX_HDR_LEN = L2TP_UDP_HDR_LEN + 8 + L2SPEC_LEN;
/** Bytes reserved in front of a frame in I/O slots (>= MAX_HDR_LEN). */
export const HEADROOM = 32;

/** Offsets and length from wire/l2tpv3.ts, the one source of the header layout. */
function layout(encap: Encap, cookieLen: number, l2specType: L2specType): SessionLayout {
  const l2spec = l2specType === 'default';
  return {
    hdrLen: l2tpHeaderLen(encap, cookieLen, l2spec),
    cookieOff: cookieOffset(encap),
    cookieLen,
    l2specOff: l2spec ? l2specOffset(encap, cookieLen) : -1,
  };
}

/** Layout of what we send: our `cookie`. */
export const txLayout = (encap: Encap, cookieLen: number, l2specType: L2specType): SessionLayout =>
  layout(encap, cookieLen, l2specType);

/** Layout of what we expect: the `peer_cookie` length. */
export const rxLayout = (encap: Encap, peerCookieLen: number, l2specType: L2specType): SessionLayout =>
  layout(encap, peerCookieLen, l2specType);
