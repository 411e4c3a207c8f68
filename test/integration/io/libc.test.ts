import { test } from 'node:test';
import assert from 'node:assert/strict';
import { L2tpError } from '../../../src/errors.js';
import { koffiAvailable, libc, setNonBlocking, F_GETFL, O_NONBLOCK } from '../../../src/io/koffi/libc.js';
import { errnoName, errnoNumber, errnoError, throwErrno, isBackpressure, EAGAIN, ENOBUFS, EEXIST, EINTR } from '../../../src/io/koffi/errno.js';
import { sockaddr, readSockaddr, parseAddr, v4Mapped } from '../../../src/io/koffi/udp.js';
import { EpollSet, EPOLLIN, eventCreate, eventSignal, eventDrain, closeFd } from '../../../src/io/koffi/epoll.js';
import { Batch } from '../../../src/io/koffi/batch.js';
import { writePtr, readPtr } from '../../../src/io/koffi/tapio.js';

const skip = koffiAvailable() ? false : 'koffi not available';

test('errno table and typed errors', () => {
  assert.equal(errnoName(11), 'EAGAIN');
  assert.equal(errnoName(-98), 'EADDRINUSE');
  assert.equal(errnoName(99), 'EADDRNOTAVAIL');
  assert.equal(errnoName(16), 'EBUSY');
  assert.equal(errnoName(111), 'ECONNREFUSED');
  assert.equal(errnoName(4242), 'E4242');
  assert.equal(errnoNumber('EEXIST'), EEXIST);
  assert.equal(errnoNumber('EINTR'), EINTR);
  assert.equal(errnoNumber('NOPE'), -1);
  assert.ok(isBackpressure(-EAGAIN) && isBackpressure(-ENOBUFS) && !isBackpressure(-EEXIST));
  const e = errnoError(-EEXIST);
  assert.ok(e instanceof L2tpError);
  assert.equal(e.code, 'KERNEL');
  assert.equal(e.errno, 'EEXIST');
  assert.equal(e.message, 'File exists');
  assert.throws(() => throwErrno(98, 'bind'), (x: unknown) => x instanceof L2tpError && x.errno === 'EADDRINUSE' && x.message === 'Address already in use (bind)');
});

test('koffiAvailable never throws and libc binds; errno is read after a failure', { skip }, () => {
  assert.equal(koffiAvailable(), true);
  const c = libc();
  assert.equal(c.close(-1), -1);
  assert.equal(c.errno(), 9); // EBADF
});

test('sockaddr codecs: IPv4, IPv6, scope, v4-mapped', { skip }, () => {
  const a = sockaddr(4, '192.0.2.10', 1701);
  assert.equal(a.length, 16);
  assert.deepEqual([...a.subarray(0, 8)], [2, 0, 0x06, 0xa5, 192, 0, 2, 10]);
  assert.deepEqual(readSockaddr(a, 0), { family: 4, addr: '192.0.2.10', port: 1701 });
  const b = sockaddr(6, '2001:db8::1:2', 17);
  assert.equal(b.length, 28);
  assert.equal(b.readUInt16LE(0), 10);
  assert.equal(b.readUInt16BE(2), 17);
  assert.deepEqual(readSockaddr(b, 0), { family: 6, addr: '2001:db8::1:2', port: 17 });
  assert.equal(sockaddr(6, 'fe80::1%7', 0).readUInt32LE(24), 7);
  assert.deepEqual([...parseAddr('::ffff:10.1.2.3', 6).bytes], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3]);
  assert.equal(v4Mapped('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(v4Mapped('2001:db8::1'), null);
  assert.deepEqual(readSockaddr(sockaddr(6, '::', 0), 0), { family: 6, addr: '::', port: 0 });
  assert.deepEqual(readSockaddr(sockaddr(6, '1:0:0:2::3', 0), 0), { family: 6, addr: '1:0:0:2::3', port: 0 });
  assert.throws(() => sockaddr(4, '1.2.3', 0), (x: unknown) => x instanceof L2tpError && x.errno === 'EINVAL');
  assert.throws(() => sockaddr(6, '1.2.3.4', 0), (x: unknown) => x instanceof L2tpError && x.errno === 'EINVAL');
});

test('eventfd wakes epoll; EpollSet reports the registered data; batch pointer I/O', { skip }, () => {
  const ep = new EpollSet(4);
  const ev = eventCreate();
  try {
    const fl = libc().fcntl(ev, F_GETFL, 0);
    assert.equal(fl & O_NONBLOCK, O_NONBLOCK);
    assert.equal(setNonBlocking(ev, true), 0);
    ep.add(ev, EPOLLIN, 0xdeadbeef);
    assert.equal(ep.wait(0), 0);
    assert.equal(eventDrain(ev), 0);
    assert.equal(eventSignal(ev), 0);
    assert.equal(eventSignal(ev), 0);
    assert.equal(ep.wait(100), 1);
    assert.equal(ep.data(0), 0xdeadbeef);
    assert.equal(ep.events(0) & EPOLLIN, EPOLLIN);
    assert.equal(eventDrain(ev), 2);
    assert.equal(ep.wait(0), 0);
    assert.equal(ep.del(ev), true);
    assert.equal(ep.del(ev), false);
    // writePtr/readPtr through a Batch slot on the eventfd (8-byte counter)
    const b = new Batch({ n: 2, slotSize: 64, headroom: 8 });
    b.buf.writeBigUInt64LE(5n, b.at(1));
    assert.equal(writePtr(ev, b.ptr(1), 8), 8);
    assert.equal(readPtr(ev, b.ptr(0), 8), 8);
    assert.equal(b.buf.readBigUInt64LE(b.at(0)), 5n);
    assert.equal(readPtr(ev, b.ptr(0), 8), -EAGAIN);
  } finally {
    closeFd(ev);
    ep.close();
  }
});
