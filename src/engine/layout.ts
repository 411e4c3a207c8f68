/**
 * Per-session header layout, computed once at configuration time (the
 * kernel's hdr_len, QEMU's precomputed offsets). Encap and decap then use
 * fixed offsets: which optional fields exist is configuration, never
 * signalled in the packet (docs/protocol.md §1.1).
 */
import type { Encap, L2specType } from './config.js';
import { headerLayout, L2TP_UDP_HDR_LEN, type HeaderLayout } from '../wire/l2tpv3.js';
import { L2SPEC_LEN } from '../wire/sublayer.js';

export type SessionLayout = HeaderLayout;

/** Largest L2TP header: UDP (8) + cookie 8 + sublayer 4. */
export const MAX_HDR_LEN = L2TP_UDP_HDR_LEN + 8 + L2SPEC_LEN;
/** Bytes reserved in front of a frame in I/O slots (>= MAX_HDR_LEN). */
export const HEADROOM = 32;

/** Offsets and length from wire/l2tpv3.ts, the one source of the header layout. */
const layout = (encap: Encap, cookieLen: number, l2specType: L2specType): SessionLayout => headerLayout(encap, cookieLen, l2specType === 'default');

/** Layout of what we send: our `cookie`. */
export const txLayout = (encap: Encap, cookieLen: number, l2specType: L2specType): SessionLayout =>
  layout(encap, cookieLen, l2specType);

/** Layout of what we expect: the `peer_cookie` length. */
export const rxLayout = (encap: Encap, peerCookieLen: number, l2specType: L2specType): SessionLayout =>
  layout(encap, peerCookieLen, l2specType);
