/**
 * Public API of the engine. Note: stats.ts exports counter *indices* named
 * RX_SHORT, RX_CONTROL, RX_NO_SESSION and RX_INVALID; decap.ts exports
 * RxResult *values* with the same names. This index re-exports the counter
 * indices under those names; use `RxResult.SHORT` etc. (or import from
 * './decap.js') for the result values.
 */
export * from './config.js';
export * from './stats.js';
export * from './layout.js';
export * from './seq.js';
export * from './reorder.js';
export { Tunnel } from './tunnel.js';
export { Session } from './session.js';
export { Table } from './table.js';
export { encap, countTx, countTxError } from './encap.js';
export {
  decapUdp,
  decapIp,
  expire,
  purge,
  RxResult,
  RX_RESULT_NAMES,
  RX_OK,
  RX_QUEUED,
  RX_BAD_VERSION,
  RX_BAD_COOKIE,
  RX_SEQ_REQUIRED,
  RX_OUT_OF_WINDOW,
  RX_SEQ_DISCARD,
  RX_DEV_DROP,
  RX_QUEUE_FULL,
  type RxSink,
  type FrameSink,
} from './decap.js';
