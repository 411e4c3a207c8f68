/**
 * The one lookup of the iproute2 `ip` binary for tests and benchmarks: the
 * product's own (src/control/netinfo.ts), which honours UL2TP_REAL_IP and
 * never returns the ul2tp `ip` shim, even when a test puts it first in PATH.
 */
import { ipBinary } from '../src/control/netinfo.js';

export const IP: string = ipBinary();
