/**
 * Backend selection at daemon start (like ws's optional bufferutil): the
 * native koffi backend when koffi loads, else native-free/. `UL2TP_BACKEND`
 * or `ul2tp daemon --backend` forces one. The only module that reaches into
 * native-free/ or koffi/.
 */
import type { Dataplane } from './types.js';

export interface BackendChoice {
  dp: Dataplane;
  /** One human line: why this backend runs. */
  why: string;
}

export async function selectBackend(force?: string): Promise<BackendChoice> {
  if (force && force !== 'koffi' && force !== 'native' && force !== 'native-free') {
    throw new Error(`unknown backend "${force}" (use koffi or native-free)`);
  }
  if (force !== 'native-free') {
    let reason = '';
    try {
      const { koffiAvailable } = await import('./koffi/libc.js');
      if (koffiAvailable()) {
        const { KoffiDataplane } = await import('./koffi/dataplane.js');
        return { dp: new KoffiDataplane(), why: force ? 'forced' : 'koffi native addon loaded' };
      }
      reason = 'the koffi native addon is not installed or does not load on this platform';
    } catch (e) {
      reason = `the koffi native addon failed to load: ${(e as Error).message}`;
    }
    if (force) throw new Error(`backend koffi was forced but ${reason}`);
    const { NativeFreeDataplane } = await import('../../native-free/dataplane.js');
    return { dp: new NativeFreeDataplane(), why: `falling back: ${reason}` };
  }
  const { NativeFreeDataplane } = await import('../../native-free/dataplane.js');
  return { dp: new NativeFreeDataplane(), why: 'forced' };
}
