/**
 * Sequence numbers across restarts (src/control/seq-restart.ts) against the
 * kernel's receive window (engine/seq.ts): the jump covers what the crashed
 * daemon can have sent, and repeated restarts without a resync stay inside
 * the peer's window.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_JUMP, MIN_JUMP, RateTracker, burstHalf, restartJump, resumeSequence } from '../../../src/control/seq-restart.js';
import { SEQ_WINDOW, seqDelta, seqInWindow } from '../../../src/engine/seq.js';
import type { SessionConfig } from '../../../src/engine/config.js';

const CFG: SessionConfig = {
  tunnelId: 1,
  sessionId: 1,
  peerSessionId: 1,
  ifname: 'x',
  cookie: '',
  peerCookie: '',
  l2specType: 'default',
  sendSeq: true,
  recvSeq: true,
  reorderTimeoutMs: 0,
};

test('the jump covers a peak-rate session for the time the daemon ran since its last write', () => {
  for (const rate of [1, 50, 10_000, 200_000]) {
    for (const runMs of [0, 200, 1000, 3000]) {
      const j = restartJump(rate, runMs);
      assert.ok(j >= Math.min(MAX_JUMP, (rate * (runMs + 500)) / 1000), `rate ${rate}, ${runMs} ms: jump ${j}`);
      assert.ok(j >= MIN_JUMP && j <= MAX_JUMP);
    }
  }
  assert.ok(restartJump(undefined, 0) > restartJump(100, 0), 'an unmeasured rate is assumed high');
});

test('hundreds of restarts of a quiet session without any resync stay inside the peer window', () => {
  // The peer's nr stays where it was (it never got 5 packets in a row from us).
  const peerNr = 0xfffff0; // near the wrap, on purpose
  let cfg: SessionConfig & { nsRate?: number } = { ...CFG, initialNs: peerNr, nsRate: 10 };
  for (let k = 1; k <= 500; k++) {
    cfg = { ...resumeSequence(cfg, 1000), nsRate: 10 };
    cfg = { ...cfg, initialNs: ((cfg.initialNs ?? 0) + 1) & 0xffffff }; // one ping between restarts
    assert.ok(seqInWindow(cfg.initialNs!, peerNr), `restart ${k}: ns ${cfg.initialNs} is ${seqDelta(cfg.initialNs!, peerNr)} ahead of nr ${peerNr} (window ${SEQ_WINDOW})`);
  }
});

test('five back-to-back restarts before any rate was measured stay inside the window', () => {
  let cfg: SessionConfig & { nsRate?: number } = { ...CFG };
  for (let k = 1; k <= 5; k++) cfg = resumeSequence(cfg, 300);
  assert.ok(seqInWindow(cfg.initialNs!, 0), `ns ${cfg.initialNs}`);
});

test('RateTracker keeps the peak packets per second, across the 24-bit wrap', () => {
  const r = new RateTracker();
  r.sample('a', 0xffff00, 0);
  r.sample('a', 0x000100, 1000); // 512 packets across the wrap in 1 s
  r.sample('a', 0x000110, 2000);
  assert.equal(r.peak.get('a'), 512);
  r.forget('a');
  assert.equal(r.peak.get('a'), undefined);
});

test('a burst the daemon did not write yet stays under the jump: it writes at half of it', () => {
  // Whatever the rate known at the last write, sending burstHalf() more triggers a write, and
  // until then a restart jumps at least twice that far.
  for (const rate of [undefined, 1, 100, 5000, 300_000]) {
    const half = burstHalf(rate);
    assert.ok(half >= 1000, `rate ${rate}: a quiet session may send ${half} before the next write`);
    assert.ok(restartJump(rate, 0) >= 2 * half, `rate ${rate}`);
  }
});
