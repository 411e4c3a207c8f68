/**
 * What happened to one received packet: small integers returned by decapUdp
 * and decapIp (engine/decap.ts), with their names for logs and tests.
 */

/** Delivered to the sink (after in-order release from the queue, possibly with others). */
export const RX_OK = 0;
/** Reorder mode: copied into the session's queue (it may already have been released). */
export const RX_QUEUED = 1;
/** Too short: UDP payload < 14 bytes (tunnel RX_SHORT), IP < 4 bytes (orphan RX_SHORT), IP too short for cookie + sublayer (tunnel RX_SHORT). */
export const RX_SHORT = 2;
/** Control message (UDP T bit; IP session id 0): counted in RX_CONTROL, dropped. */
export const RX_CONTROL = 3;
/** No such session (also: UDP Ver = 2): counted in RX_NO_SESSION, dropped. */
export const RX_NO_SESSION = 4;
/** UDP version is not 3 after a successful lookup: tunnel rx_invalid. */
export const RX_BAD_VERSION = 5;
/** UDP packet too short for cookie + sublayer: tunnel rx_invalid. */
export const RX_INVALID = 6;
/** Cookie mismatch: rx_cookie_discards + rx_errors. */
export const RX_BAD_COOKIE = 7;
/** Unsequenced packet while recv_seq is set: rx_seq_discards + rx_errors. */
export const RX_SEQ_REQUIRED = 8;
/** Sequence number outside the window (old, duplicate, too far ahead): rx_errors only. */
export const RX_OUT_OF_WINDOW = 9;
/** Out-of-sequence packet dropped (no reordering, before a resync): rx_seq_discards + rx_errors. */
export const RX_SEQ_DISCARD = 10;
/** Counted as received (rx_packets/bytes), then dropped: frame shorter than 14 bytes (RX_DEV_DROPS). */
export const RX_DEV_DROP = 11;
/** Reorder mode: queue full or frame larger than a queue slot: rx_errors. */
export const RX_QUEUE_FULL = 12;

/** Names by RxResult value. */
export const RX_RESULT_NAMES = [
  'OK',
  'QUEUED',
  'SHORT',
  'CONTROL',
  'NO_SESSION',
  'BAD_VERSION',
  'INVALID',
  'BAD_COOKIE',
  'SEQ_REQUIRED',
  'OUT_OF_WINDOW',
  'SEQ_DISCARD',
  'DEV_DROP',
  'QUEUE_FULL',
] as const;

export type RxResult = number;
/** The same values by short name (`RxResult.OK` …), for code that imports only the engine index. */
export const RxResult = {
  OK: RX_OK,
  QUEUED: RX_QUEUED,
  SHORT: RX_SHORT,
  CONTROL: RX_CONTROL,
  NO_SESSION: RX_NO_SESSION,
  BAD_VERSION: RX_BAD_VERSION,
  INVALID: RX_INVALID,
  BAD_COOKIE: RX_BAD_COOKIE,
  SEQ_REQUIRED: RX_SEQ_REQUIRED,
  OUT_OF_WINDOW: RX_OUT_OF_WINDOW,
  SEQ_DISCARD: RX_SEQ_DISCARD,
  DEV_DROP: RX_DEV_DROP,
  QUEUE_FULL: RX_QUEUE_FULL,
} as const;

