/**
 * End-to-end: two namespaces on a veth underlay, a ul2tp daemon in each
 * (started by the first CLI call), and pings across the overlay for every
 * combination of encap udp/ip × underlay IPv4/IPv6 × cookie 0/4/8 ×
 * l2spec none/default × seq none/both. With `seq both` and `l2spec_type none`
 * no frame can carry a sequence number, so the kernel drops everything
 * (rx_seq_discards): that combination must fail the same way.
 *
 * The backend is a parameter: the UDP half of the matrix also runs on the
 * native-free backend (UL2TP_E2E_BACKENDS=koffi,native-free is the default).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { netnsUnavailable, ping, underlay, type Underlay } from '../../../support/netns.js';
import { makeLink, sessionCounters } from '../../../support/ul2tp.js';
import { IP } from '../../../support/ip.js';

const skip = netnsUnavailable();
if (skip) console.log(`# skipping e2e matrix: ${skip}`);

const backends = (process.env.UL2TP_E2E_BACKENDS ?? 'koffi,native-free').split(',').filter(Boolean);
const COOKIES: Record<number, [string, string]> = {
  0: ['', ''],
  4: ['a1b2c3d4', '0badf00d'],
  8: ['0102030405060708', 'f0e0d0c0b0a09080'],
};

for (const backend of backends) {
  describe(`e2e matrix on the ${backend} backend`, { skip: skip || undefined }, () => {
    let u: Underlay;
    let n = 0;
    before(() => {
      u = underlay();
      process.env.UL2TP_BACKEND = backend; // inherited by the daemons the first CLI call starts
    });
    after(() => {
      delete process.env.UL2TP_BACKEND;
      u?.destroy();
    });

    for (const encap of backend === 'native-free' ? ['udp'] : ['udp', 'ip']) {
      for (const fam of [4, 6] as const) {
        for (const cookieLen of [0, 4, 8]) {
          for (const l2spec of ['none', 'default']) {
            for (const seq of ['none', 'both']) {
              const title = `encap ${encap}, IPv${fam} underlay, cookie ${cookieLen}, l2spec ${l2spec}, seq ${seq}`;
              it(title, () => {
                const l = makeLink(u, {
                  n: ++n,
                  encap: encap as 'udp' | 'ip',
                  family: fam,
                  cookies: COOKIES[cookieLen],
                  l2spec: l2spec as 'none' | 'default',
                  seq: seq as 'none' | 'both',
                });
                try {
                  const dropsAll = seq === 'both' && l2spec === 'none';
                  const got4 = dropsAll ? ping(u.a, l.b4, 2, 56, [], 2) : ping(u.a, l.b4, 3);
                  const got6 = dropsAll ? ping(u.a, l.b6, 2, 56, [], 2) : ping(u.a, l.b6, 3);
                  const ca = sessionCounters(u.a, l.tidA, l.sidA);
                  const cb = sessionCounters(u.b, l.tidB, l.sidB);
                  if (dropsAll) {
                    assert.equal(got4 + got6, 0, 'seq both without a sublayer must drop every frame');
                    assert.ok(cb.rx_seq_discards > 0 && cb.rx_seq_discards === cb.rx_errors, JSON.stringify(cb));
                    assert.equal(cb.rx_packets, 0);
                  } else {
                    assert.equal(got4, 3, 'IPv4 pings over the overlay');
                    assert.equal(got6, 3, 'IPv6 pings over the overlay');
                    assert.ok(ca.tx_packets >= 6 && cb.rx_packets >= 6, `counters a=${JSON.stringify(ca)} b=${JSON.stringify(cb)}`);
                    assert.equal(cb.rx_errors, 0);
                    assert.equal(cb.rx_cookie_discards, 0);
                  }
                } finally {
                  l.remove();
                }
                // Deleting the tunnel removes its session interfaces (synchronously).
                assert.notEqual(u.a.exec(IP, ['link', 'show', l.ifA]).status, 0, `${l.ifA} must be gone`);
                assert.notEqual(u.b.exec(IP, ['link', 'show', l.ifB]).status, 0, `${l.ifB} must be gone`);
              });
            }
          }
        }
      }
    }
  });
}
