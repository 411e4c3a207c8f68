/**
 * The ul2tp library: `import { connect } from 'ul2tp'` gives a typed client
 * of this network namespace's daemon, the same one the `ul2tp` CLI uses
 * (src/api/client.ts). The control protocol underneath is documented in
 * docs/control-protocol.md for clients in other languages.
 *
 *   const ul2tp = await connect();
 *   await ul2tp.addTunnel({ tunnel_id: 1, peer_tunnel_id: 1, local: '192.0.2.1', remote: '192.0.2.2', udp_sport: 1701, udp_dport: 1701 });
 *   const ifname = await ul2tp.addSession({ tunnel_id: 1, session_id: 1, peer_session_id: 1 });
 *   for await (const sample of ul2tp.watchCounters({ intervalMs: 1000 })) console.log(sample);
 */
export {
  connect,
  isDaemonReply,
  Ul2tpClient,
  type CaptureOptions,
  type CapturedPacket,
  type ConnectOptions,
  type CounterSample,
  type Filter,
  type ImpairSettings,
  type SessionCounters,
  type SessionSpec,
  type TunnelSpec,
  type WatchOptions,
} from './api/client.js';
export { L2tpError, ERRNO_TEXT, type L2tpErrorCode } from './errors.js';
export { PROTOCOL_VERSION, MIN_PROTOCOL_VERSION } from './control/protocol.js';
/** Every message type of the control protocol (docs/control-protocol.md): requests, results, SessionInfo, TunnelInfo, … */
export type * from './control/protocol.js';
