/**
 * 24-bit sequence arithmetic of the default L2-specific sublayer (RFC 3931
 * §4.6.1, Appendix C) with Linux's constants (docs/protocol.md §2.1, §2.6). All
 * modular arithmetic of the engine lives here.
 */

/** nr_max: sequence numbers are 24-bit. */
export const SEQ_MASK = 0xff_ffff;
/** nr_window_size = nr_max / 2: a packet is accepted when seqDelta(ns, nr) < this. */
export const SEQ_WINDOW = 0x7f_ffff;
/** nr_oos_count_max: resync after more than this many consecutive OOS packets. */
export const NR_OOS_COUNT_MAX = 4;

/** Forward distance from `nr` to `ns`, modulo 2^24. */
export const seqDelta = (ns: number, nr: number): number => (ns - nr) & SEQ_MASK;

/** The next sequence number after `n`. */
export const seqNext = (n: number): number => (n + 1) & SEQ_MASK;

/** Linux's l2tp_seq_check_rx_window: ns lies in [nr, nr + 0x7FFFFE] modulo 2^24. */
export const seqInWindow = (ns: number, nr: number): boolean => ((ns - nr) & SEQ_MASK) < SEQ_WINDOW;
