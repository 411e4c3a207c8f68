/**
 * Tunnel sockets with node:dgram: bound to local:udp_sport and connected to
 * remote:udp_dport like the kernel's tunnel socket (docs/protocol.md §6.4), so only
 * the peer's packets arrive.
 *
 * Differences from the kernel that dgram imposes (no setsockopt access):
 * - checksums are always computed: `udp_csum off` (IPv4) and
 *   `udp6_csum_tx off` (IPv6) still send checksummed packets (receivers
 *   accept both);
 * - `udp6_csum_rx off` cannot be honoured: the kernel drops zero-checksum
 *   IPv6 UDP before the socket (UDP_NO_CHECK6_RX needs setsockopt), so a peer
 *   sending zero checksums over IPv6 is not heard. Use the native backend;
 * - DF: Linux's default path-MTU discovery applies (DF=1 on packets that
 *   fit), not the kernel tunnel's DF=0; oversized packets are still
 *   fragmented locally by the stack.
 */
import dgram from 'node:dgram';
import { ERRNO_TEXT, kernelError, L2tpError } from '../src/errors.js';
import type { TunnelConfig } from '../src/engine/config.js';

/** Socket buffer sizes asked for (the kernel caps them at net.core.[rw]mem_max). */
const SOCKET_BUFFER = 4 << 20;

function toKernelError(err: unknown, what: string): L2tpError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (code in ERRNO_TEXT) return kernelError(code, what);
  return kernelError('EINVAL', `${what}: ${(err as Error).message}`);
}

const V4_MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/** Addresses and socket type for a tunnel; an IPv6 tunnel between v4-mapped addresses is IPv4 (docs/protocol.md §3.2). */
export function socketAddresses(cfg: TunnelConfig): { type: 'udp4' | 'udp6'; local: string; remote: string } {
  if (cfg.family === 6) {
    const l = V4_MAPPED.exec(cfg.local);
    const r = V4_MAPPED.exec(cfg.remote);
    if (l && r) return { type: 'udp4', local: l[1], remote: r[1] };
    return { type: 'udp6', local: cfg.local, remote: cfg.remote };
  }
  return { type: 'udp4', local: cfg.local, remote: cfg.remote };
}

/**
 * Open the tunnel socket: bind local:udp_sport (0 = any port), connect
 * remote:udp_dport. Throws KERNEL EADDRINUSE / EADDRNOTAVAIL / ... ; the
 * socket is closed on failure.
 */
export async function openTunnelSocket(cfg: TunnelConfig): Promise<dgram.Socket> {
  const { type, local, remote } = socketAddresses(cfg);
  const sock = dgram.createSocket({ type, recvBufferSize: SOCKET_BUFFER, sendBufferSize: SOCKET_BUFFER });
  try {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(toKernelError(err, `bind ${local}:${cfg.udpSport}`));
      sock.once('error', onError);
      sock.bind({ address: local, port: cfg.udpSport, exclusive: true }, () => {
        sock.off('error', onError);
        resolve();
      });
    });
    await new Promise<void>((resolve, reject) => {
      try {
        sock.connect(cfg.udpDport, remote, (err?: Error) => {
          if (err) reject(toKernelError(err, `connect ${remote}:${cfg.udpDport}`));
          else resolve();
        });
      } catch (err) {
        reject(toKernelError(err, `connect ${remote}:${cfg.udpDport}`));
      }
    });
  } catch (e) {
    try {
      sock.close();
    } catch {
      /* not running */
    }
    throw e;
  }
  return sock;
}
