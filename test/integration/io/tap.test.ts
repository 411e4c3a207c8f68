import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { L2tpError } from '../../../src/errors.js';
import { libc, closeAsync } from '../../../src/io/koffi/libc.js';
import { openTap, setPersist, tapExists, deleteTap, tapInfo, IFF_TAP, IFF_NO_PI, IFF_MULTI_QUEUE } from '../../../src/io/koffi/tap.js';
import { getMtu, setMtu, getMac, setMac, randomMac, macToString, getIfindex, setUp, getFlags, IFF_UP, getTxQueueLen, setTxQueueLen, deleteLinks } from '../../../src/io/koffi/netdev.js';
import { skipReason, inNetns, ip } from './helpers.js';
import { Netns } from '../../../support/netns.js';

const skip = skipReason() || false;
if (skip) console.log(`# skipping koffi TAP tests: ${skip}`);

let ns = '';
let cleanup = () => {};
before(() => {
  if (skip) return;
  const n = new Netns('ul2io');
  ns = n.name;
  cleanup = () => n.destroy();
});
after(() => cleanup());

function link(name: string): { ifname: string; mtu: number; address: string; flags: string[]; txqlen?: number } {
  return (JSON.parse(ip('-n', ns, '-j', '-d', 'link', 'show', 'dev', name)) as Array<ReturnType<typeof link>>)[0];
}

function kernelErrno(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof L2tpError, `expected L2tpError, got ${String(e)}`);
    assert.equal(e.code, 'KERNEL');
    return e.errno;
  }
  assert.fail('expected a throw');
}

test('openTap creates a DOWN TAP with the requested name; MTU, MAC, flags, txqueuelen via ioctl', { skip }, () => {
  const name = `ul2t${process.pid % 100000}x`;
  inNetns(ns, () => {
    const t = openTap(name, { nonBlocking: true });
    try {
      assert.equal(t.name, name);
      assert.ok(tapExists(name));
      assert.ok(getIfindex(name) > 0);
      const info = tapInfo(t.fd);
      assert.equal(info.name, name);
      assert.equal(info.flags & (IFF_TAP | IFF_NO_PI), IFF_TAP | IFF_NO_PI);
      assert.equal(getFlags(name) & IFF_UP, 0, 'created down');

      setMtu(name, 1446);
      assert.equal(getMtu(name), 1446);
      const mac = randomMac();
      assert.equal(mac[0] & 0x03, 0x02, 'unicast + locally administered');
      setMac(name, mac);
      assert.deepEqual(getMac(name), mac);
      setTxQueueLen(name, 1000);
      assert.equal(getTxQueueLen(name), 1000);
      setUp(name, true);
      assert.equal(getFlags(name) & IFF_UP, IFF_UP);

      // What `ip` sees (independent of our ioctls)
      const l = link(name);
      assert.equal(l.mtu, 1446);
      assert.equal(l.address, macToString(mac));
      assert.ok(l.flags.includes('UP'));
      setUp(name, false);
      assert.ok(!link(name).flags.includes('UP'));
    } finally {
      libc().close(t.fd);
    }
    // not persistent: gone with its fd
    assert.equal(tapExists(name), false);
  });
  // and it never existed in our own namespace
  assert.equal(tapExists(name), false);
});

test('%d names are expanded by the kernel and returned', { skip }, () => {
  inNetns(ns, () => {
    const a = openTap('ul2tpeth%d');
    const b = openTap('ul2tpeth%d');
    try {
      assert.equal(a.name, 'ul2tpeth0');
      assert.equal(b.name, 'ul2tpeth1');
      assert.ok(tapExists('ul2tpeth1'));
    } finally {
      libc().close(a.fd);
      libc().close(b.fd);
    }
  });
});

test('persistence survives close; deleteTap removes it; errors map to kernelError', { skip }, () => {
  const name = `ul2p${process.pid % 100000}x`;
  inNetns(ns, () => {
    const t = openTap(name, { persist: true });
    // second non-multiqueue attach while attached: EBUSY
    assert.equal(kernelErrno(() => openTap(name)), 'EBUSY');
    // exclusive create of an existing name: EEXIST
    assert.equal(kernelErrno(() => openTap(name, { exclusive: true })), 'EEXIST');
    libc().close(t.fd);
    assert.ok(tapExists(name), 'persistent TAP outlives its fd');
    // adopt it again (daemon restart), then drop persistence through the fd
    const again = openTap(name);
    assert.equal(again.name, name);
    libc().close(again.fd);
    assert.ok(tapExists(name));
    assert.equal(deleteTap(name), true);
    assert.equal(tapExists(name), false);
    assert.equal(deleteTap(name), false, 'absent → false');

    // setPersist(fd,false) + close also removes it
    const p = openTap(name, { persist: true });
    setPersist(p.fd, false);
    libc().close(p.fd);
    assert.equal(tapExists(name), false);

    // a name used by a non-TAP device → EEXIST
    ip('-n', ns, 'link', 'add', name, 'type', 'bridge');
    try {
      assert.equal(kernelErrno(() => openTap(name)), 'EEXIST');
    } finally {
      ip('-n', ns, 'link', 'del', name);
    }
    // bad names
    assert.equal(kernelErrno(() => openTap('x'.repeat(16))), 'EINVAL');
    // ioctl on a missing interface
    assert.equal(kernelErrno(() => getMtu('nosuchdev0')), 'ENODEV');
  });
});

test('multiqueue TAP: several queues, deleteTap finds the queue mode', { skip }, () => {
  const name = `ul2m${process.pid % 100000}x`;
  inNetns(ns, () => {
    const q0 = openTap(name, { multiQueue: true, persist: true });
    const q1 = openTap(name, { multiQueue: true });
    try {
      assert.equal(tapInfo(q1.fd).flags & IFF_MULTI_QUEUE, IFF_MULTI_QUEUE);
    } finally {
      libc().close(q0.fd);
      libc().close(q1.fd);
    }
    assert.ok(tapExists(name));
    assert.equal(deleteTap(name), true);
    assert.equal(tapExists(name), false);
  });
});

test('300 TAPs: create with MTU+MAC; deleteLinks removes them all in one request', { skip }, () => {
  const N = 300;
  inNetns(ns, () => {
    const t0 = performance.now();
    const names: string[] = [];
    const open: number[] = [];
    try {
      for (let i = 0; i < N; i++) {
        const t = openTap('ul2s%d', { persist: true });
        names.push(t.name);
        setMtu(t.name, 1446);
        setMac(t.name, randomMac());
        if (i % 3 === 0) open.push(t.fd); // some still attached to an fd
        else libc().close(t.fd);
      }
      const createMs = performance.now() - t0;
      assert.ok(names.every((n) => tapExists(n)));
      const t1 = performance.now();
      assert.equal(deleteLinks([...names, 'nosuchdev0']), N);
      const delMs = performance.now() - t1;
      console.log(`# ${N} TAPs: create+mtu+mac ${createMs.toFixed(0)} ms, deleteLinks ${delMs.toFixed(0)} ms`);
      assert.ok(names.every((n) => !tapExists(n)), 'all deleted');
      // How fast this is, is measured by npm run bench:scale and bench:batch, against the
      // one-by-one deletion in the same run; a test on a shared machine only logs it.
      // fds of deleted TAPs fail (EBADFD) and can still be closed
      const b = Buffer.alloc(64);
      assert.equal(libc().readBuf(open[0], b, 64), -1);
      assert.equal(libc().errno(), 77);
      names.length = 0;
    } finally {
      for (const fd of open) libc().close(fd);
      if (names.length) deleteLinks(names);
    }
  });
});

test('closeAsync: closing TAP fds off the event loop removes the devices', { skip }, async () => {
  const fds = inNetns(ns, () => [openTap('ul2c%d'), openTap('ul2c%d'), openTap('ul2c%d')]);
  assert.ok(inNetns(ns, () => fds.every((t) => tapExists(t.name))));
  const r = await Promise.all(fds.map((t) => closeAsync(t.fd)));
  assert.deepEqual(r, [0, 0, 0]);
  assert.ok(inNetns(ns, () => fds.every((t) => !tapExists(t.name))));
});
