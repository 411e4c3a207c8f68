import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { libc } from '../../../src/io/koffi/libc.js';
import { openTap } from '../../../src/io/koffi/tap.js';
import { setUp, setMtu } from '../../../src/io/koffi/netdev.js';
import { openUdpTunnelSocket } from '../../../src/io/koffi/udp.js';
import { eventCreate, eventSignal } from '../../../src/io/koffi/epoll.js';
import { skipReason, makePair, inNetns, ip, type Pair } from './helpers.js';
import { pingIn } from '../../../support/netns.js';

const skip = skipReason() || false;
if (skip) console.log(`# skipping koffi forwarder test: ${skip}`);

let p: Pair;
const fds: number[] = [];
before(() => {
  if (!skip) p = makePair('f');
});
after(() => {
  for (const fd of fds) libc().close(fd);
  p?.cleanup();
});

for (const family of [4, 6] as const) {
  test(`TAP → UDP/IPv${family} → TAP: ping between two namespaces through a worker-thread forwarder`, { skip }, async () => {
    const tapName = `ul2f${family}`;
    const la = family === 4 ? p.a4 : p.a6;
    const lb = family === 4 ? p.b4 : p.b6;
    const port = 1700 + family;
    const side = (ns: string, local: string, remote: string, ov4: string, ov6: string) =>
      inNetns(ns, () => {
        const t = openTap(tapName, { nonBlocking: true, exclusive: true });
        fds.push(t.fd);
        setMtu(tapName, 1400);
        setUp(tapName, true);
        const u = openUdpTunnelSocket({ family, local, sport: port, remote, dport: port, udp6CsumRx: true });
        fds.push(u);
        ip('-n', ns, 'addr', 'add', `${ov4}/24`, 'dev', tapName);
        ip('-n', ns, 'addr', 'add', `${ov6}/64`, 'dev', tapName, 'nodad');
        return { tap: t.fd, udp: u };
      });
    const A = side(p.a, la, lb, '192.168.77.1', 'fd77::1');
    const B = side(p.b, lb, la, '192.168.77.2', 'fd77::2');
    const evfd = eventCreate();
    fds.push(evfd);
    const counters = new SharedArrayBuffer(3 * 8);
    const w = new Worker(new URL('./forwarder.js', import.meta.url), {
      workerData: { taps: [A.tap, B.tap], udps: [A.udp, B.udp], evfd, counters },
    });
    const exited = new Promise<number>((r) => w.once('exit', r));
    try {
      await new Promise<void>((resolve, reject) => {
        w.once('message', () => resolve());
        w.once('error', reject);
      });
      const allReplies = (ns: string, count: number, args: string[]): void => {
        const r = pingIn(ns, count, args);
        assert.equal(r.replies, count, r.out);
      };
      allReplies(p.a, 3, ['192.168.77.2']);
      allReplies(p.a, 3, ['-6', 'fd77::2']);
      // a 1372-byte ping fills the 1400-byte overlay MTU: the outer datagram is 1414+ bytes
      allReplies(p.b, 2, ['-M', 'do', '-s', '1372', '192.168.77.1']);
      const c = new Float64Array(counters);
      assert.ok(c[0] >= 16 && c[1] >= 16, `forwarded ${c[0]} / ${c[1]}`);
      assert.equal(c[2], 0, 'no errors');
    } finally {
      // wake the worker out of epoll_wait from the main thread
      assert.equal(eventSignal(evfd), 0);
      const code = await Promise.race([exited, new Promise<number>((r) => setTimeout(() => r(-999), 3000))]);
      if (code === -999) await w.terminate();
      assert.equal(code, 0, 'worker stopped by the eventfd signal');
      for (const fd of [A.tap, A.udp, B.tap, B.udp, evfd]) {
        libc().close(fd);
        fds.splice(fds.indexOf(fd), 1);
      }
    }
  });
}
