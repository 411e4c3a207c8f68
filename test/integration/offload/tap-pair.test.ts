/**
 * The offload building blocks against the real kernel, without the daemon: two TAPs with
 * IFF_VNET_HDR + TSO (one per namespace) joined by a forwarder in this process that cuts
 * every TCP super-frame the kernel hands it into segments (tso.ts) and coalesces them again
 * (gro.ts) before writing them to the other TAP: towards A through the worker's write queue
 * (tapqueue.ts: queued iovecs naming the segments where they lie, written at the end of each
 * batch through io_uring where the kernel allows), towards B copied together and written at once. A TCP transfer through it must arrive
 * intact; every segment is checked with an independent checksum routine (IPv4 and IPv6).
 * With UL2TP_RECORD_FIXTURES=1 a few real super-frames are saved as fixtures for the unit
 * tests (test/unit/offload/fixtures).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { IP } from '../../../support/ip.js';
import { Netns, netnsUnavailable, uniq } from '../../../support/netns.js';
import { ROOT, sh, waitFor } from '../../../support/proc.js';
import { closeFd } from '../../../src/io/koffi/epoll.js';
import { openTap, setOffload, setVnetHdrSize, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6 } from '../../../src/io/koffi/tap.js';
import { readPtr, writeFrame } from '../../../src/io/koffi/tapio.js';
import { TapWriteQueue, tapNowaitIo } from '../../../src/io/koffi/tapqueue.js';
import { Uring } from '../../../src/io/koffi/uring.js';
import { libc } from '../../../src/io/koffi/libc.js';
import { Coalescer } from '../../../src/io/offload/gro.js';
import { completeCsum, parseSuper, SuperFrame, TSO_OK, writeSegment } from '../../../src/io/offload/tso.js';
import { GSO_NONE, GSO_TCPV4, parseVnet, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, VnetHdr } from '../../../src/io/offload/vnet.js';
import { parseFrame } from '../../unit/offload/frames.js';

const skip = netnsUnavailable();
if (skip) console.log(`# skipping TAP pair offload test: ${skip}`);
const XFER = join(ROOT, 'dist', 'test', 'integration', 'lib', 'tcp-xfer.js');
const FIXTURES = join(ROOT, 'test', 'unit', 'offload', 'fixtures');

interface Side {
  ns: Netns;
  fd: number;
  name: string;
}

describe('offload against the kernel: TAP ⇄ segment ⇄ coalesce ⇄ TAP', { skip: skip || undefined }, () => {
  let a: Side;
  let b: Side;
  before(() => {
    const mk = (addr4: string, addr6: string): Side => {
      const ns = new Netns('ofp');
      const t = openTap(uniq('oft'), { nonBlocking: true, vnetHdr: true });
      setVnetHdrSize(t.fd, VNET_HDR_LEN);
      setOffload(t.fd, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
      sh(IP, ['link', 'set', t.name, 'netns', ns.name]);
      ns.ip('addr', 'add', addr4, 'dev', t.name);
      ns.ip('-6', 'addr', 'add', addr6, 'dev', t.name, 'nodad');
      ns.ip('link', 'set', t.name, 'up');
      return { ns, fd: t.fd, name: t.name };
    };
    a = mk('10.98.0.1/24', 'fd98::1/64');
    b = mk('10.98.0.2/24', 'fd98::2/64');
  });
  after(() => {
    for (const s of [a, b]) {
      if (!s) continue;
      closeFd(s.fd);
      s.ns.destroy();
    }
  });

  it('a TCP transfer each way and over IPv6 arrives intact; every segment is a valid frame', async () => {
    const c = libc();
    const buf = Buffer.alloc(70000);
    const SEG_STRIDE = 2000;
    /** Segment slots for 4 super-frames, so that a flush writes several frames at once. */
    const SUPERS_PER_FLUSH = 4;
    const seg = Buffer.alloc(64 + SUPERS_PER_FLUSH * 64 * SEG_STRIDE);
    const addr = c.addressOf(buf.buffer) + buf.byteOffset;
    const vh = new VnetHdr();
    const sf = new SuperFrame();
    const stats = new Float64Array(2);
    const ring = Uring.available() ? new Uring(128) : null;
    const nowait = ring !== null && tapNowaitIo(ring);
    const qA = new TapWriteQueue(stats, 1, nowait ? ring : null);
    // a super-frame written in more than one piece was written from where its segments lay
    let gatheredA = 0;
    let cur = { nseg: 0, pieces: 0 };
    const done = () => {
      if (cur.nseg > 1 && cur.pieces > 1) gatheredA++;
      cur = { nseg: 0, pieces: 0 };
    };
    const counting = {
      get queued() {
        return qA.queued;
      },
      address: (buf: Buffer) => qA.address(buf),
      begin: (fd: number, base: number, nseg: number) => (done(), (cur.nseg = nseg), qA.begin(fd, base, nseg)),
      piece: (addr: number, len: number) => (cur.pieces++, qA.piece(addr, len)),
      sync: () => (done(), qA.sync()),
    };
    const groA = new Coalescer(writeFrame, stats, 1, 8, undefined, 0, 0, counting); // writes to A
    const groB = new Coalescer(writeFrame, stats, 1);
    let supers = 0;
    let segments = 0;
    let partial = 0;
    let bad = '';
    const recorded: Buffer[] = [];
    const record = process.env.UL2TP_RECORD_FIXTURES === '1';
    let running = true;
    // Move frames from one TAP to the other until told to stop (yielding to the event loop).
    const pump = (from: Side, to: Side, gro: Coalescer): number => {
      let moved = 0;
      for (let i = 0; i < 64; i++) {
        const n = readPtr(from.fd, addr, buf.length);
        if (n <= 0) break;
        moved++;
        parseVnet(buf, 0, n, vh);
        const len = n - VNET_HDR_LEN;
        if (vh.gsoType === GSO_NONE) {
          if ((vh.flags & VNET_F_NEEDS_CSUM) !== 0) {
            partial++;
            completeCsum(buf, VNET_HDR_LEN, len, vh.csumStart, vh.csumOffset);
          }
          gro.add(to.fd, 0, buf, VNET_HDR_LEN, len, false); // buf is read into again next
          continue;
        }
        if (parseSuper(buf, VNET_HDR_LEN, len, vh, 9000, sf) !== TSO_OK) {
          bad ||= `unparseable super-frame gso_type ${vh.gsoType}`;
          continue;
        }
        supers++;
        assert.ok(sf.nseg <= 64, `${sf.nseg} segments fit the segment slots`);
        if (record && recorded.length < 4 && sf.nseg >= 3 && (recorded.length < 2) === ((vh.gsoType & 0x7f) === GSO_TCPV4)) {
          recorded.push(Buffer.from(buf.subarray(0, n)));
        }
        for (let k = 0; k < sf.nseg; k++) {
          const at = 64 + ((supers % SUPERS_PER_FLUSH) * 64 + k) * SEG_STRIDE;
          const sl = writeSegment(sf, buf, VNET_HDR_LEN, k, seg, at);
          const f = seg.subarray(at, at + sl);
          const p = parseFrame(f);
          if (!p.tcpOk || !p.ipOk) bad ||= `segment ${k} of ${sf.nseg}: bad checksum`;
          if (p.seq !== ((sf.seq + k * sf.mss) >>> 0)) bad ||= `segment ${k}: sequence`;
          if (k < sf.nseg - 1 && (p.flags & 0x09) !== 0) bad ||= `segment ${k}: PSH/FIN before the last`;
          if (!p.v6 && p.id !== ((sf.ipId + k) & 0xffff)) bad ||= `segment ${k}: ip id`;
          if (sl > 1514) bad ||= `segment ${k}: ${sl} bytes`;
          segments++;
          gro.add(to.fd, 0, seg, at, sl, true);
        }
        if (supers % SUPERS_PER_FLUSH === 0) gro.flush(); // before the segment slots are reused
      }
      gro.flush();
      return moved;
    };
    const loop = async () => {
      while (running) {
        const m = pump(a, b, groB) + pump(b, a, groA);
        await new Promise((r) => (m > 0 ? setImmediate(r) : setTimeout(r, 1)));
      }
    };
    const forwarding = loop();
    try {
      for (const [from, to, dst, port] of [
        [a, b, '10.98.0.2', 7501],
        [b, a, '10.98.0.1', 7502],
        [a, b, 'fd98::2', 7503],
      ] as const) {
        const server = to.ns.spawn(process.execPath, [XFER, 'serve', String(port)]);
        let out = '';
        server.stdout!.on('data', (d: string) => (out += d));
        assert.ok(await waitFor(() => out.includes('READY'), 10_000), 'receiver did not start');
        const sender = from.ns.spawn(process.execPath, [XFER, 'send', dst, String(port), String(8 * 1024 * 1024)]);
        let sent = '';
        sender.stdout!.on('data', (d: string) => (sent += d));
        const [code] = (await once(sender, 'exit')) as [number];
        assert.equal(code, 0);
        assert.ok(await waitFor(() => out.split('\n').length >= 3, 30_000), 'receiver did not finish');
        assert.equal(out.split('\n')[1].trim(), sent.trim(), `${dst}: received bytes and sha256 match`);
      }
    } finally {
      running = false;
      await forwarding;
    }
    assert.equal(bad, '');
    console.log(`# ${supers} super-frames → ${segments} segments; ${partial} partial checksums completed`);
    assert.ok(supers > 20, `the kernel handed us TSO super-frames (${supers})`);
    assert.ok(segments > supers * 2);
    ring?.close();
    console.log(`# coalesced again: ${groA.superFrames} super-frames towards A (${gatheredA} from where the segments lay, ${qA.uringFrames} frames through io_uring), ${groB.superFrames} copied towards B, ${stats[1]} write errors`);
    assert.ok(groA.superFrames > 10 && groB.superFrames > 10, 'both directions wrote coalesced super-frames');
    assert.ok(gatheredA > 10, 'towards A, super-frames written from where their segments lay');
    assert.equal(stats[1], 0);
    for (const s of [a, b]) assert.equal(s.ns.snmp('Tcp').InCsumErrors, 0, `${s.name}: every frame we wrote passed the kernel's TCP checksum`);
    if (record) {
      mkdirSync(FIXTURES, { recursive: true });
      recorded.forEach((r, i) => writeFileSync(join(FIXTURES, `tso-${i < 2 ? 'v4' : 'v6'}-${i % 2}.bin`), r));
    }
  });
});
