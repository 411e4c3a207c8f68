/**
 * Short form of the churn soak (bench/soak/soak.ts): SOAK_SECONDS (default 30)
 * of add/delete cycles while long-lived sessions carry pings. The long form is
 * `node dist/bench/soak/soak.js --minutes 30`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { judge, runSoak } from '../../../bench/soak/soak.js';
import { netnsUnavailable } from '../../../support/netns.js';

const skip = netnsUnavailable();
if (skip) console.log(`# skipping soak: ${skip}`);
const SECONDS = Number(process.env.SOAK_SECONDS ?? 30);

describe('churn soak (short)', { skip: skip || undefined }, () => {
  it(`${SECONDS} s of tunnel/session churn: fds, threads, RSS flat; nothing left over; counters monotonic`, async () => {
    const r = await runSoak(SECONDS);
    console.log(
      `soak: ${r.cycles} cycles (${r.tunnelsChurned} tunnels, ${r.sessionsChurned} sessions per side) in ${r.seconds.toFixed(1)} s; ` +
        `fds ${r.start.fds} → ${r.end.fds}, threads ${r.start.threads} → ${r.end.threads}, RSS ${r.start.rssKiB} → ${r.end.rssKiB} KiB; ` +
        `long-lived pings ${r.longLivedPings.map((p) => `${p.rx}/${p.tx} (lost ${p.lost.length}, in flight at the end ${p.inFlight}, slowest ${p.maxRttMs} ms)`).join(', ')}; churned-link pings ${r.churnPings.ok}/${r.churnPings.sent}`,
    );
    assert.deepEqual(judge(r), []);
  });
});
