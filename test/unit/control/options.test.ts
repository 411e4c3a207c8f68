/** The daemon's dataplane options: flags win over the environment, the environment over the defaults. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dataplaneOptionsFrom, parseWorkers, parseWorkerThreads, workersText } from '../../../src/control/options.js';
import { DEFAULT_DATAPLANE_OPTIONS, defaultWorkers, defaultWorkerThreads } from '../../../src/io/options.js';

test('no flags, empty environment: the defaults (one worker pair on 2 cores)', () => {
  assert.deepEqual(dataplaneOptionsFrom({}, {}, 2), DEFAULT_DATAPLANE_OPTIONS);
});

test('environment variables keep working, read in one place', () => {
  const o = dataplaneOptionsFrom({}, { UL2TP_BACKEND: 'native-free', UL2TP_OFFLOAD: 'off', UL2TP_UDP_GSO: '0', UL2TP_UDP_GRO: '0', UL2TP_NF_READER: 'worker', UL2TP_WORKERS: '3', UL2TP_WORKER_THREADS: '2' }, 2);
  assert.deepEqual(o, { backend: 'native-free', offload: false, udpGso: false, udpGro: false, nfReader: 'worker', workers: 3, workerThreads: 2 });
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

test('worker pairs: the default follows the core count (1 up to 2 cores, then cores/2, at most 8)', () => {
  const byCores: Array<[number, number]> = [[1, 1], [2, 1], [3, 1], [4, 2], [5, 2], [8, 4], [16, 8], [64, 8], [0, 1], [NaN, 1]];
  for (const [cores, pairs] of byCores) {
    assert.equal(defaultWorkers(cores), pairs, `${cores} cores`);
    assert.equal(dataplaneOptionsFrom({}, {}, cores).workers, pairs, `${cores} cores, no flag, no environment`);
  }
});

test('worker pairs: --workers wins over UL2TP_WORKERS, which wins over the default', () => {
  assert.equal(dataplaneOptionsFrom({ workers: '4' }, { UL2TP_WORKERS: '2' }, 16).workers, 4);
  assert.equal(dataplaneOptionsFrom({ workers: 5 }, {}, 2).workers, 5);
  assert.equal(dataplaneOptionsFrom({}, { UL2TP_WORKERS: '2' }, 16).workers, 2);
  assert.equal(dataplaneOptionsFrom({}, { UL2TP_WORKERS: ' 64 ' }, 2).workers, 64);
  assert.equal(dataplaneOptionsFrom({}, { UL2TP_WORKERS: '' }, 16).workers, 8, 'empty = unset');
});

test('worker pairs: anything but an integer 1..64 is refused with a message naming its source', () => {
  for (const bad of ['0', '65', '-1', '2.5', '1e1', 'four', '0x4', '', ' ', '4 4']) {
    assert.throws(() => parseWorkers(bad, '--workers'), (e: Error) => e.message.includes('--workers must be an integer from 1 to 64') && e.message.includes(JSON.stringify(bad)), bad);
  }
  assert.throws(() => dataplaneOptionsFrom({}, { UL2TP_WORKERS: '0' }), /UL2TP_WORKERS must be an integer from 1 to 64, not "0"/);
  assert.throws(() => dataplaneOptionsFrom({ workers: '100' }, { UL2TP_WORKERS: '2' }), /--workers must be an integer from 1 to 64, not "100"/);
  assert.equal(parseWorkers('1', 'x'), 1);
  assert.equal(parseWorkers('064', 'x'), 64);
});

test('threads per worker: --worker-threads wins over UL2TP_WORKER_THREADS, which wins over the default (1 up to 2 cores, else 2)', () => {
  for (const [cores, threads] of [[1, 1], [2, 1], [3, 2], [4, 2], [64, 2], [0, 1], [NaN, 1]] as const) {
    assert.equal(defaultWorkerThreads(cores), threads, `${cores} cores`);
    assert.equal(dataplaneOptionsFrom({}, {}, cores).workerThreads, threads, `${cores} cores, no flag, no environment`);
  }
  assert.equal(dataplaneOptionsFrom({}, { UL2TP_WORKER_THREADS: '1' }, 16).workerThreads, 1);
  assert.equal(dataplaneOptionsFrom({}, { UL2TP_WORKER_THREADS: ' ' }, 16).workerThreads, 2, 'blank = unset');
  assert.equal(dataplaneOptionsFrom({ workerThreads: '2' }, { UL2TP_WORKER_THREADS: '1' }).workerThreads, 2);
  assert.equal(dataplaneOptionsFrom({ workerThreads: 1 }, {}).workerThreads, 1);
  for (const bad of ['0', '3', 'one', '1.0', '-1', '']) {
    assert.throws(() => parseWorkerThreads(bad, '--worker-threads'), (e: Error) => e.message === `--worker-threads must be 1 or 2, not ${JSON.stringify(bad)}`, bad);
  }
  assert.throws(() => dataplaneOptionsFrom({}, { UL2TP_WORKER_THREADS: '4' }), /UL2TP_WORKER_THREADS must be 1 or 2, not "4"/);
  assert.equal(workersText(1, 2), '1 worker pair');
  assert.equal(workersText(4, undefined), '4 worker pairs');
  assert.equal(workersText(1, 1), '1 worker, one thread each');
  assert.equal(workersText(3, 1), '3 workers, one thread each');
});
