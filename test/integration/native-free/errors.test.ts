/**
 * native-free backend errors that need no root: encap ip refused with a
 * clear message, EADDRINUSE / EADDRNOTAVAIL from the tunnel socket, nothing
 * left behind after a refusal; and the backend's import graph has no koffi.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeFreeDataplane } from '../../../native-free/dataplane.js';
import { L2tpError } from '../../../src/errors.js';
import { TX_PACKETS } from '../../../src/engine/stats.js';
import { tunnelCfg } from './rig.js';

function freeUdpPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

describe('native-free dataplane errors', () => {
  test('encap ip is refused with EPROTONOSUPPORT and says what to do', async () => {
    const dp = new NativeFreeDataplane();
    try {
      const cfg = { ...tunnelCfg({ tunnelId: 5, peerTunnelId: 6, local: '127.0.0.1', remote: '127.0.0.1', udpSport: 0, udpDport: 0 }), encap: 'ip' as const };
      await assert.rejects(dp.addTunnel(cfg), (e: unknown) => {
        assert.ok(e instanceof L2tpError);
        assert.equal(e.code, 'KERNEL');
        assert.equal(e.errno, 'EPROTONOSUPPORT');
        assert.match(e.message, /^Protocol not supported/);
        assert.match(e.message, /encap ip/);
        assert.match(e.message, /koffi/);
        assert.match(e.message, /encap udp/);
        return true;
      });
      // nothing left behind: the same tunnel id works with encap udp
      const port = await freeUdpPort();
      const h = await dp.addTunnel(tunnelCfg({ tunnelId: 5, peerTunnelId: 6, local: '127.0.0.1', remote: '127.0.0.1', udpSport: port, udpDport: port + 1 }));
      assert.ok(h.statsBase > 0);
      assert.equal(dp.stats[h.statsBase + TX_PACKETS], 0);
    } finally {
      await dp.close();
    }
  });

  test('a busy local port gives EADDRINUSE, a foreign local address EADDRNOTAVAIL', async () => {
    const dp = new NativeFreeDataplane();
    const busy = dgram.createSocket('udp4');
    await new Promise<void>((r) => busy.bind(0, '127.0.0.1', () => r()));
    const port = busy.address().port;
    try {
      await assert.rejects(
        dp.addTunnel(tunnelCfg({ tunnelId: 1, peerTunnelId: 1, local: '127.0.0.1', remote: '127.0.0.2', udpSport: port, udpDport: 1701 })),
        (e: unknown) => e instanceof L2tpError && e.code === 'KERNEL' && e.errno === 'EADDRINUSE' && /^Address already in use/.test(e.message),
      );
      await assert.rejects(
        dp.addTunnel(tunnelCfg({ tunnelId: 1, peerTunnelId: 1, local: '192.0.2.55', remote: '192.0.2.56', udpSport: 0, udpDport: 1701 })),
        (e: unknown) => e instanceof L2tpError && e.errno === 'EADDRNOTAVAIL',
      );
      // the refused id is still free
      const free = await freeUdpPort();
      await dp.addTunnel(tunnelCfg({ tunnelId: 1, peerTunnelId: 1, local: '127.0.0.1', remote: '127.0.0.2', udpSport: free, udpDport: 1701 }));
      await assert.rejects(
        dp.addTunnel(tunnelCfg({ tunnelId: 1, peerTunnelId: 1, local: '127.0.0.1', remote: '127.0.0.2', udpSport: 0, udpDport: 1701 })),
        (e: unknown) => e instanceof L2tpError && e.errno === 'EEXIST',
      );
    } finally {
      busy.close();
      await dp.close();
    }
  });

  test('the native-free import graph never reaches koffi', () => {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const root = path.resolve(here, '../../../native-free');
    const seen = new Set<string>();
    const queue = fs.readdirSync(root).filter((f) => f.endsWith('.js')).map((f) => path.join(root, f));
    assert.ok(queue.some((f) => f.endsWith('dataplane.js')));
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|new URL\(\s*)['"]([^'"]+)['"]/g)) {
        const spec = m[1];
        assert.ok(!/koffi/.test(spec), `${file} imports ${spec}`);
        if (spec.startsWith('.')) queue.push(path.resolve(path.dirname(file), spec));
        else assert.ok(spec.startsWith('node:'), `${file} imports a package: ${spec}`);
      }
    }
    assert.ok(seen.size >= 8, `followed ${seen.size} files`);
  });
});
