/**
 * The text forms of an impairment: what `ul2tp impair` reads (rates as tc
 * writes them) and what `show -s` and `impair` print.
 */
import type { ImpairJson } from '../control/protocol.js';

function pct(n: number): string {
  return `${Number(n.toFixed(4))}%`;
}

/** `1mbit`, `512kbit`, `1500bit`: the largest unit that divides the rate. */
export function formatRate(bps: number): string {
  if (bps >= 1e9 && bps % 1e9 === 0) return `${bps / 1e9}gbit`;
  if (bps >= 1e6 && bps % 1e6 === 0) return `${bps / 1e6}mbit`;
  if (bps >= 1e3 && bps % 1e3 === 0) return `${bps / 1e3}kbit`;
  return `${bps}bit`;
}

/** Parses `RATE` as tc does for the units we accept: bit, kbit, mbit, gbit (decimal). */
export function parseRate(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit)?$/i.exec(text);
  if (!m) return null;
  const mult = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 }[(m[2] ?? 'bit').toLowerCase() as 'bit'];
  const v = Math.round(Number(m[1]) * mult);
  return v > 0 && Number.isSafeInteger(v) ? v : null;
}

/** The one-line text form: `loss 5% delay 10ms jitter 2ms rate 1mbit seed 7` (only what is set). */
export function formatImpair(c: ImpairJson): string {
  const parts: string[] = [];
  if (c.loss > 0) parts.push(`loss ${pct(c.loss)}`);
  if (c.duplicate > 0) parts.push(`duplicate ${pct(c.duplicate)}`);
  if (c.reorder > 0) parts.push(`reorder ${pct(c.reorder)} distance ${c.distance}`);
  if (c.delay > 0 || c.jitter > 0) parts.push(`delay ${c.delay}ms` + (c.jitter > 0 ? ` jitter ${c.jitter}ms` : ''));
  if (c.rate > 0) parts.push(`rate ${formatRate(c.rate)}`);
  if (c.seed !== null) parts.push(`seed ${c.seed}`);
  return parts.join(' ');
}

