/**
 * Backend selection at daemon start (like ws's optional bufferutil): the
 * native koffi backend when koffi loads, else native-free/. `options.backend`
 * (the daemon's --backend or UL2TP_BACKEND) forces one. The only module that
 * reaches into native-free/ or koffi/. The options go to the backend as they are.
 */
import { DEFAULT_DATAPLANE_OPTIONS, type DataplaneOptions } from './options.js';
import type { Dataplane } from './types.js';

export interface BackendChoice {
  dp: Dataplane;
  /** One human line: why this backend runs. */
  why: string;
}

export async function selectBackend(options: DataplaneOptions = DEFAULT_DATAPLANE_OPTIONS): Promise<BackendChoice> {
  const force = options.backend;
  if (force && force !== 'koffi' && force !== 'native' && force !== 'native-free') {
    throw new Error(`unknown backend "${force}" (use koffi or native-free)`);
  }
  if (force !== 'native-free') {
    let reason: string;
    try {
      const { koffiAvailable } = await import('./koffi/libc.js');
      if (koffiAvailable()) {
        const { KoffiDataplane } = await import('./koffi/dataplane.js');
        return { dp: new KoffiDataplane(options), why: force ? 'forced' : 'koffi native addon loaded' };
      }
      reason = 'the koffi native addon is not installed or does not load on this platform';
    } catch (e) {
      reason = `the koffi native addon failed to load: ${(e as Error).message}`;
    }
    if (force) throw new Error(`backend koffi was forced but ${reason}`);
    const { NativeFreeDataplane } = await import('../../native-free/dataplane.js');
    return { dp: new NativeFreeDataplane(options), why: `falling back: ${reason}` };
  }
  const { NativeFreeDataplane } = await import('../../native-free/dataplane.js');
  return { dp: new NativeFreeDataplane(options), why: 'forced' };
}
