/**
 * README's first command: the demo builds two namespaces and a tunnel with
 * cookies and sequencing, pings across, shows `show` and the counters, and
 * removes everything it created.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { IP } from '../../../support/ip.js';
import { netnsUnavailable } from '../../../support/netns.js';
import { ROOT, run } from '../../../support/proc.js';

const skip = netnsUnavailable();
if (skip) console.log(`# skipping the demo: ${skip}`);

describe('npm run demo', { skip: skip || undefined }, () => {
  it('shows a working tunnel and leaves nothing behind', () => {
    const before = run(IP, ['netns', 'list']).stdout;
    const r = run(process.execPath, [join(ROOT, 'dist', 'src', 'demo', 'demo.js')], 180_000);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /3 packets transmitted, 3 received/);
    assert.match(r.stdout, /Tunnel 3000, encap UDP\n {2}From 192\.0\.2\.1 to 192\.0\.2\.2/);
    assert.match(r.stdout, /cookie a1b2c3d4 {2}peer cookie 0badf00d\n {2}sequence numbering: send recv/);
    assert.match(r.stdout, /RX: packets [1-9]\d*/, 'the -s counters are printed');
    assert.match(r.stdout, /What just happened/);
    assert.match(r.stdout, /Removed the namespaces/);
    const demoNs = run(IP, ['netns', 'list']).stdout.split('\n').filter((l) => l.startsWith('ul2tp-demo-') && !before.includes(l));
    assert.deepEqual(demoNs, [], 'no demo namespace left');
  });
});
