/**
 * epoll readiness for a character device without native code: libuv's pipe
 * handle accepts any pollable fd (uv_pipe_open), and Node exposes it through
 * the legacy process.binding('pipe_wrap') (on the allow-list, no warning
 * unless --pending-deprecation). Wrapped in a net.Socket with `onread`, each
 * read(2) — one frame on a macvtap — lands in a buffer we choose, with no
 * allocation per read. The handle owns the fd: destroying the socket closes it.
 */
import net from 'node:net';

interface PipeHandle {
  open(fd: number): number;
}
type PipeWrap = { Pipe: new (type: number) => PipeHandle; constants: { SOCKET: number } };

let cached: PipeWrap | null | undefined;

/** process.binding('pipe_wrap') when this Node has it, else null. */
export function getPipeWrap(): PipeWrap | null {
  if (cached !== undefined) return cached;
  try {
    const binding = (process as unknown as { binding(name: string): unknown }).binding('pipe_wrap') as PipeWrap;
    cached = typeof binding?.Pipe === 'function' && typeof binding.constants?.SOCKET === 'number' ? binding : null;
  } catch {
    cached = null;
  }
  return cached;
}

/**
 * Read `fd` on this thread's event loop: `nextBuffer()` gives the buffer for
 * the next read (called once at start and after every read), `onRead(n)` is
 * called with the length read into it. Throws when the fd cannot be watched.
 */
export function watchFd(fd: number, nextBuffer: () => Buffer, onRead: (n: number) => void): net.Socket {
  const pw = getPipeWrap();
  if (!pw) throw new Error('pipe_wrap binding unavailable');
  const handle = new pw.Pipe(pw.constants.SOCKET);
  const err = handle.open(fd);
  if (err !== 0) throw new Error(`cannot watch fd ${fd} (uv error ${err})`);
  return new net.Socket({
    handle,
    readable: true,
    writable: false,
    onread: {
      buffer: nextBuffer,
      callback: (n: number) => {
        onRead(n);
        return true;
      },
    },
  } as unknown as net.SocketConstructorOpts);
}
