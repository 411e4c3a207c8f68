/**
 * The daemon's dataplane options: built once, here, from the daemon's flags and
 * the environment, then handed down (io/select.ts → backend → workers). The only
 * place below the CLI that reads these environment variables:
 *   UL2TP_BACKEND=koffi|native-free   force a backend (flag: --backend)
 *   UL2TP_OFFLOAD=0|off|no|false      plain TAPs, no TSO/coalescing (flag: --no-offload)
 *   UL2TP_UDP_GSO=0                   no UDP GSO on send (koffi, offload on)
 *   UL2TP_UDP_GRO=0                   no UDP GRO on receive (koffi, offload on)
 *   UL2TP_NF_READER=event|worker|poll native-free session reader
 */
import { DEFAULT_DATAPLANE_OPTIONS, type DataplaneOptions, type ReaderKind } from '../io/options.js';

/** The daemon flags that shape the dataplane. */
export interface DataplaneFlags {
  backend?: string;
  /** false for --no-offload. */
  offload?: boolean;
}

function isOff(v: string | undefined): boolean {
  const t = (v ?? '').trim().toLowerCase();
  return t === '0' || t === 'off' || t === 'no' || t === 'false';
}

function readerFrom(v: string | undefined): ReaderKind {
  return v === 'worker' || v === 'poll' ? v : DEFAULT_DATAPLANE_OPTIONS.nfReader;
}

/** Flags win over the environment; the environment over the defaults. */
export function dataplaneOptionsFrom(flags: DataplaneFlags, env: NodeJS.ProcessEnv): DataplaneOptions {
  const backend = flags.backend ?? (env.UL2TP_BACKEND || undefined);
  return {
    backend,
    offload: flags.offload === false ? false : !isOff(env.UL2TP_OFFLOAD),
    udpGso: env.UL2TP_UDP_GSO !== '0',
    udpGro: env.UL2TP_UDP_GRO !== '0',
    nfReader: readerFrom(env.UL2TP_NF_READER),
  };
}
