/**
 * Sequence numbers across daemon restarts (the kernel never restarts, so it
 * has no rule for this; cold path).
 *
 * The peer (kernel rules, docs/protocol.md §2.6, engine/seq.ts) accepts a packet whose
 * ns lies in [nr, nr + 0x7FFFFE]; one behind that window is discarded, and
 * only after 5 consecutive packets ahead of nr does it resync to them. So
 * after a crash our first ns must be
 *   (a) at or ahead of everything we ever sent (else it falls behind the
 *       peer's window), and
 *   (b) less than 0x7FFFFF ahead of the lowest nr the peer may still have
 *       (else it falls outside the window on the other side, for good).
 *
 * What we know at restart: S, the ns persisted at the last state write;
 * `rate`, the highest send rate (packets/s) seen for the session; and how
 * long the daemon can have been sending since that write: the state file's
 * mtime is touched every HEARTBEAT_MS while the daemon runs, so the daemon
 * died less than (mtime - saved_at) + SLACK_MS after the write. Hence:
 *
 *   ns' = S + J,  J = clamp(rate x (mtime - saved_at + SLACK_MS), MIN_JUMP, MAX_JUMP)
 *
 * covers (a) (with a 2x margin on the rate, a floor of RATE_FLOOR, and
 * RATE_UNKNOWN when no rate was measured yet), and the new ns is written
 * before the dataplane gets the session, so the next restart starts from ns'
 * whatever happens in between.
 *
 * The rate is history, and a burst right after a write is not in it: 20,000
 * frames sent in the 0.3 s after a quiet session's last write, then a crash,
 * would leave ns' = S + ~6,000 behind the peer, which then discards every
 * packet until we have sent the difference again (with pings: never). So the
 * daemon also writes as soon as a session has sent half of the jump its
 * last write allows (burstHalf, checked every GUARD_MS): what the dataplane
 * sends after the last write stays under J unless a session goes from quiet
 * to more than ~100,000 packets/s within one GUARD_MS.
 *
 * For (b), every restart moves ns by J only, which is what the time the
 * daemon ran can have consumed: a quiet session moves by about 10,000 per
 * restart, so hundreds of back-to-back restarts fit in the window even if the
 * peer never resyncs in between.
 */
import type { SessionConfig } from '../engine/config.js';
import { SEQ_MASK } from '../engine/seq.js';

export const MIN_JUMP = 256;
/** Half the peer's window: the old fixed jump, now the upper bound. */
export const MAX_JUMP = 1 << 22;
/** Send rate assumed before one was measured (packets/s per session). */
export const RATE_UNKNOWN = 1 << 19;
/** Lowest rate assumed once measured (margin for a quiet session that starts a burst; see GUARD_MS). */
export const RATE_FLOOR = 4096;
/** How often the daemon looks for a session that has sent half of its jump since the last write. */
export const GUARD_MS = 25;
/**
 * An idle sequenced session's state is rewritten this often even when nothing moved:
 * the jump grows with the time since the last write (mtime - saved_at), and after
 * long idle periods it would reach MAX_JUMP, so that two crashes could leave the window.
 */
export const IDLE_REWRITE_MS = 10_000;
/** How often the daemon touches the state file (and samples send rates). */
export const HEARTBEAT_MS = 500;
/** Heartbeat period plus scheduling slack. */
export const SLACK_MS = 1500;

/** A persisted session: its configuration plus the peak send rate seen (packets/s). */
export type SavedSession = SessionConfig & { nsRate?: number };

/** The jump for a session whose peak rate is `rate` (undefined: unknown), down `runMs` after its last write at most. */
export function restartJump(rate: number | undefined, runMs: number): number {
  const r = rate === undefined ? RATE_UNKNOWN : Math.max(2 * rate, RATE_FLOOR);
  const j = Math.ceil((r * (Math.max(0, runMs) + SLACK_MS)) / 1000);
  return Math.min(MAX_JUMP, Math.max(MIN_JUMP, j));
}

/** The configuration a session restarts with after a crash (see the module comment). */
export function resumeSequence(cfg: SavedSession, runMs: number): SavedSession {
  const j = restartJump(cfg.nsRate, runMs);
  return { ...cfg, initialNs: ((cfg.initialNs ?? 0) + j) & SEQ_MASK, nsAhead: undefined };
}

/** The sessions of a state file as they restart after a crash (`runMs`: see the module comment). */
export function resumeSessions(sessions: readonly SavedSession[], runMs: number): SavedSession[] {
  return sessions.map((s) => resumeSequence(s, runMs));
}

/**
 * How far a session's ns may move past its last written value before the daemon
 * writes again: half of the smallest jump a restart would make from that write.
 */
export function burstHalf(rate: number | undefined): number {
  return Math.floor(restartJump(rate, 0) / 2);
}

/** Peak send rate per session, sampled every HEARTBEAT_MS from the ns counters. */
export class RateTracker {
  private readonly last = new Map<string, { ns: number; at: number }>();
  readonly peak = new Map<string, number>();

  /** Restore the persisted peak of a session. */
  seed(key: string, rate: number | undefined): void {
    if (rate !== undefined && rate > 0) this.peak.set(key, rate);
  }

  sample(key: string, ns: number, now: number): void {
    const l = this.last.get(key);
    this.last.set(key, { ns, at: now });
    if (l === undefined || now <= l.at) return;
    const rate = Math.ceil((((ns - l.ns) & SEQ_MASK) * 1000) / Math.max(now - l.at, HEARTBEAT_MS / 2));
    if (rate > (this.peak.get(key) ?? 0)) this.peak.set(key, rate);
  }

  forget(key: string): void {
    this.last.delete(key);
    this.peak.delete(key);
  }
}
