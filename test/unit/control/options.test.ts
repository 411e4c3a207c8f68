/** The daemon's dataplane options: flags win over the environment, the environment over the defaults. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dataplaneOptionsFrom } from '../../../src/control/options.js';
import { DEFAULT_DATAPLANE_OPTIONS } from '../../../src/io/options.js';

test('no flags, empty environment: the defaults', () => {
  assert.deepEqual(dataplaneOptionsFrom({}, {}), DEFAULT_DATAPLANE_OPTIONS);
});

test('environment variables keep working, read in one place', () => {
  const o = dataplaneOptionsFrom({}, { UL2TP_BACKEND: 'native-free', UL2TP_OFFLOAD: 'off', UL2TP_UDP_GSO: '0', UL2TP_UDP_GRO: '0', UL2TP_NF_READER: 'worker' });
  assert.deepEqual(o, { backend: 'native-free', offload: false, udpGso: false, udpGro: false, nfReader: 'worker' });
  for (const v of ['0', 'no', 'FALSE', ' off ']) assert.equal(dataplaneOptionsFrom({}, { UL2TP_OFFLOAD: v }).offload, false, v);
  assert.equal(dataplaneOptionsFrom({}, { UL2TP_OFFLOAD: '1' }).offload, true);
  assert.equal(dataplaneOptionsFrom({}, { UL2TP_NF_READER: 'bogus' }).nfReader, 'event');
  assert.equal(dataplaneOptionsFrom({}, { UL2TP_BACKEND: '' }).backend, undefined);
});

test('daemon flags win over the environment', () => {
  const o = dataplaneOptionsFrom({ backend: 'koffi', offload: false }, { UL2TP_BACKEND: 'native-free', UL2TP_OFFLOAD: '1' });
  assert.equal(o.backend, 'koffi');
  assert.equal(o.offload, false);
});
