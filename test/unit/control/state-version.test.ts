/**
 * State file versions (control/handlers.ts checkSavedState): version 1 wrote
 * udpCsum false for every tunnel whose udp_csum was not given; read after an
 * upgrade, those tunnels must stay "not given" (checksums sent, shown as off),
 * not turn into an explicit `udp_csum off`, and --config must not see them as
 * changed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkSavedState } from '../../../src/control/handlers.js';
import { sendsUdpChecksums } from '../../../src/engine/config.js';

const tunnel = { tunnelId: 1, peerTunnelId: 2, encap: 'udp', family: 4, local: '192.0.2.1', remote: '192.0.2.2', udpSport: 5000, udpDport: 6000, udp6CsumTx: true, udp6CsumRx: true };

test('a version 1 state file: udpCsum false reads as not given, true stays on', () => {
  const st = checkSavedState({ version: 1, tunnels: [{ ...tunnel, udpCsum: false }, { ...tunnel, tunnelId: 3, udpCsum: true }], sessions: [] });
  assert.equal(st.version, 2);
  assert.equal('udpCsum' in st.tunnels[0], false);
  assert.equal(sendsUdpChecksums(st.tunnels[0]), true);
  assert.equal(st.tunnels[1].udpCsum, true);
});

test('a version 2 state file keeps an explicit udp_csum off', () => {
  const st = checkSavedState({ version: 2, tunnels: [{ ...tunnel, udpCsum: false }], sessions: [] });
  assert.equal(st.tunnels[0].udpCsum, false);
  assert.equal(sendsUdpChecksums(st.tunnels[0]), false);
});

test('other versions are refused', () => {
  assert.throws(() => checkSavedState({ version: 3, tunnels: [], sessions: [] }), /version 1 or 2/);
});
