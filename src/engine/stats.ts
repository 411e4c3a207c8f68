/**
 * Counters (the kernel's l2tp_stats names, docs/protocol.md §2.9) and per-session shared
 * flags, kept in fixed-size slots of one Float64Array. In the daemon the array
 * sits on a SharedArrayBuffer: workers write, `show`/stats read without
 * messaging. Each counter has exactly one writing thread (tx counters: the
 * worker that reads the session's TAP; rx counters: the worker that reads the
 * tunnel's socket). Float64 holds integers exactly up to 2^53.
 */
export const TX_PACKETS = 0;
export const TX_BYTES = 1;
export const TX_ERRORS = 2;
export const RX_PACKETS = 3;
export const RX_BYTES = 4;
export const RX_ERRORS = 5;
export const RX_SEQ_DISCARDS = 6;
export const RX_OOS_PACKETS = 7;
export const RX_COOKIE_DISCARDS = 8;
export const RX_INVALID = 9;
/** Session only: current send_seq (0/1). Written by rx (LAC rule), read by tx and show. */
export const SEND_SEQ = 10;
/** Session only: recv_seq (0/1). */
export const RECV_SEQ = 11;
/** Drops that have no kernel counter (tunnel slot): unknown session, control, too short. */
export const RX_NO_SESSION = 12;
export const RX_CONTROL = 13;
export const RX_SHORT = 14;
/** Frames dropped after counting as received (shorter than an Ethernet header, device write failed). */
export const RX_DEV_DROPS = 15;
/** Counters and flags occupy [0, COUNTER_SLOTS) of a slot. */
export const COUNTER_SLOTS = 16;
/**
 * Session only: shadows of the sequence state, written by the engine as it
 * changes (tx: next ns to send; rx: next nr expected), so that the daemon can
 * save them and a restarted daemon does not restart at 0 (the peer would drop
 * everything until the numbers caught up again, docs/protocol.md §2.6).
 */
export const NS_SHADOW = 16;
export const NR_SHADOW = 17;
/** Session and tunnel (tx side): packets the impairment stage lost on purpose (`impair ... loss`); they also count as sent. */
export const IMPAIR_LOST = 18;
/** Session and tunnel (tx side): packets the impairment stage dropped because its queue was full or the packet too large. */
export const IMPAIR_DROPS = 19;

export const SLOT_SIZE = 20;

/** Kernel counter names in netlink order, then ours; index = constant above. */
export const COUNTER_NAMES = [
  'tx_packets',
  'tx_bytes',
  'tx_errors',
  'rx_packets',
  'rx_bytes',
  'rx_errors',
  'rx_seq_discards',
  'rx_oos_packets',
  'rx_cookie_discards',
  'rx_invalid',
] as const;

export type CounterName = (typeof COUNTER_NAMES)[number];
export type Counters = Record<CounterName, number>;

/** Read one slot's counters into a plain object (control plane only). */
export function readCounters(stats: Float64Array, base: number): Counters {
  const out = {} as Counters;
  for (let i = 0; i < COUNTER_NAMES.length; i++) out[COUNTER_NAMES[i]] = stats[base + i];
  return out;
}

/**
 * Our drop counters that have no kernel equivalent (the kernel drops these
 * silently): kept so that every received packet is accounted for somewhere.
 */
export const EXTRA_COUNTERS = [
  ['rx_no_session', RX_NO_SESSION],
  ['rx_control', RX_CONTROL],
  ['rx_short', RX_SHORT],
  ['rx_dev_drops', RX_DEV_DROPS],
  ['tx_impair_lost', IMPAIR_LOST],
  ['tx_impair_drops', IMPAIR_DROPS],
] as const;

/** One line of help per extra counter (metrics HELP text, docs). */
export const EXTRA_COUNTER_HELP: Record<ExtraCounterName, string> = {
  rx_no_session: 'Packets for an unknown session (not counted by the kernel).',
  rx_control: 'Control packets dropped (not counted by the kernel).',
  rx_short: 'Packets too short for a header (not counted by the kernel).',
  rx_dev_drops: 'Frames counted as received but not written to the interface.',
  tx_impair_lost: 'Packets the transmit impairment lost on purpose (counted as sent too).',
  tx_impair_drops: 'Packets the transmit impairment dropped because its queue was full or the packet too large.',
};

export type ExtraCounterName = (typeof EXTRA_COUNTERS)[number][0];
export type ExtraCounters = Record<ExtraCounterName, number>;

export function readExtraCounters(stats: Float64Array, base: number): ExtraCounters {
  const out = {} as ExtraCounters;
  for (const [name, i] of EXTRA_COUNTERS) out[name] = stats[base + i];
  return out;
}

/** A standalone slot (tests, in-memory engines). */
export function newSlot(): Float64Array {
  return new Float64Array(SLOT_SIZE);
}

/**
 * Hands out counter slots of one stats array: slot 0 is reserved (namespace-level
 * drops), the rest are taken lowest first and zeroed on take and on give-back.
 * Control path only.
 */
export class SlotAllocator {
  private readonly free: number[] = [];

  constructor(
    readonly stats: Float64Array,
    maxSlots: number,
  ) {
    for (let i = maxSlots - 1; i >= 1; i--) this.free.push(i * SLOT_SIZE);
  }

  /** Base index of a zeroed slot; null when none is left. */
  take(): number | null {
    const base = this.free.pop();
    if (base === undefined) return null;
    this.stats.fill(0, base, base + SLOT_SIZE);
    return base;
  }

  give(base: number): void {
    this.stats.fill(0, base, base + SLOT_SIZE);
    this.free.push(base);
  }
}
