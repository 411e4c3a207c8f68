/**
 * The one lookup of the iproute2 `ip` binary for tests and benchmarks: the
 * product's own lookup (src/cli/ip-plan.ts), which honours UL2TP_REAL_IP and
 * never returns the ul2tp `ip` shim, even when a test puts it first in PATH.
 */
import { fileURLToPath } from 'node:url';
import { findRealIp } from '../src/cli/ip-plan.js';

export const IP: string = findRealIp(fileURLToPath(import.meta.url)) ?? 'ip';
