/**
 * Unit tests of the benchmark harness's pure parts: overlay MTU arithmetic
 * (must match SPEC.md §3.4's table), statistics, the Markdown report and the
 * SVG chart. Run: node --test dist/bench/lib/
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { l2tpOverhead, PATHS, UNDERLAY_MTU } from '../e2e/paths.js';
import { median, quantile, METRICS } from '../e2e/tests.js';
import { markdown, stat, svg, type PathInfo, type Sample } from '../e2e/report.js';

test('overlay MTU per encapsulation matches SPEC.md §3.4 (1500-byte IPv4 underlay)', () => {
  const mtu = (e: 'udp' | 'ip', c: number, l: 'default' | 'none') => UNDERLAY_MTU - l2tpOverhead(e, c, l);
  assert.equal(mtu('udp', 0, 'default'), 1446);
  assert.equal(mtu('udp', 0, 'none'), 1450);
  assert.equal(mtu('udp', 8, 'default'), 1438);
  assert.equal(mtu('ip', 0, 'default'), 1458);
  assert.equal(mtu('ip', 0, 'none'), 1462);
  assert.equal(mtu('ip', 8, 'none'), 1454);
  const byId = Object.fromEntries(PATHS.map((p) => [p.id, UNDERLAY_MTU - p.overhead]));
  assert.deepEqual(
    [byId['ul2tp-udp'], byId['ul2tp-ip'], byId['ul2tp-seq-cookie'], byId['qemu-udp'], byId['qemu-ip'], byId.vxlan, byId.veth],
    [1446, 1458, 1438, 1446, 1458, 1450, 1500],
  );
});

test('median, quantile and stat', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
  const xs = Array.from({ length: 200 }, (_, i) => i + 1);
  assert.equal(quantile(xs, 0.99), 198);
  assert.equal(quantile(xs, 0.5), 100);
  assert.deepEqual(stat([5, NaN, 1, 3]), { median: 3, min: 1, max: 5, n: 3 });
  assert.equal(stat([]).n, 0);
});

function sample(path: string, round: number, tcp1: number, cpu: Record<string, number> = {}): Sample {
  return {
    round,
    path,
    test: 'tcp1',
    values: { tcp1 },
    cpu,
    rssKb: {},
    frag: { FragCreates: 0, FragOKs: 0, FragFails: 0, ReasmReqds: 0 },
    startedAt: '',
  };
}

test('markdown: medians with min–max, ratios to QEMU udp and veth, skipped paths named', () => {
  const paths: PathInfo[] = [
    { id: 'ul2tp-udp', label: 'ul2tp encap udp', overhead: 54, mtu: 1446 },
    { id: 'qemu-udp', label: 'QEMU l2tpv3 udp', overhead: 54, mtu: 1446 },
    { id: 'veth', label: 'bare veth', overhead: 0, mtu: 1500 },
    { id: 'openvpn', label: 'OpenVPN', overhead: 58, mtu: 1442, skipped: 'not installed' },
  ];
  const s = [
    sample('ul2tp-udp', 0, 1.0, { a: 50 }), sample('ul2tp-udp', 1, 1.2, { a: 60 }), sample('ul2tp-udp', 2, 0.8, { a: 40 }),
    sample('qemu-udp', 0, 0.5), sample('qemu-udp', 1, 0.4), sample('qemu-udp', 2, 0.6),
    sample('veth', 0, 10), sample('veth', 1, 10), sample('veth', 2, 10),
  ];
  const tcp1 = METRICS.filter((m) => m.key === 'tcp1');
  const md = markdown(s, paths, tcp1, 'qemu-udp', 'veth', ['tcp1']);
  assert.match(md, /\| ul2tp encap udp \| 1446 \| 1\.00 \(0\.80–1\.20\) \|/);
  assert.match(md, /\| ul2tp encap udp \| 2\.00× \| 0\.10× \|/);
  assert.match(md, /\| bare veth \| kernel \|/);
  assert.match(md, /Skipped: OpenVPN: not installed\./);
  assert.doesNotMatch(md, /\| OpenVPN \|/);
  const chart = svg(s, paths, tcp1, 'test');
  assert.match(chart, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(chart, /<\/svg>\n$/);
  assert.equal((chart.match(/<rect x=/g) ?? []).length, 3, 'one bar per path that ran');
  assert.match(chart, /axis cut/, 'the veth bar (10× the rest) is clipped');
});
