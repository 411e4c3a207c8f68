/**
 * packaging/k8s/*.yaml against the Kubernetes API schema (kubernetes-models'
 * validators, no cluster needed), plus what the example promises: NET_ADMIN,
 * /dev/net/tun, the config file from the ConfigMap, readiness from
 * `ul2tp daemon status`. And the Dockerfile's HEALTHCHECK uses the same command.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ConfigMap, Pod, type IConfigMap, type IPod } from 'kubernetes-models/v1';
import { ROOT } from '../../../support/proc.js';

const DIR = join(ROOT, 'packaging', 'k8s');

function load(file: string): Array<Record<string, unknown>> {
  const docs = parseAllDocuments(readFileSync(join(DIR, file), 'utf8'));
  return docs.map((d) => {
    assert.deepEqual(d.errors, [], `${file}: YAML errors`);
    return d.toJSON() as Record<string, unknown>;
  });
}

/** Validates one object against its kind's schema; throws with the schema's complaint. */
function validate(obj: Record<string, unknown>): void {
  const key = `${String(obj.apiVersion)}/${String(obj.kind)}`;
  switch (key) {
    case 'v1/Pod':
      new Pod(obj).validate();
      return;
    case 'v1/ConfigMap':
      new ConfigMap(obj).validate();
      return;
    default:
      assert.fail(`no schema wired up for ${key}: add it to this test`);
  }
}

test('the Kubernetes manifests are valid against the API schema', () => {
  const files = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f));
  assert.ok(files.length > 0);
  for (const f of files) for (const obj of load(f)) validate(obj);
});

test('the schema check catches a broken pod (it is not a no-op)', () => {
  const pod = load('ul2tp.yaml').find((o) => o.kind === 'Pod') as unknown as IPod;
  const broken = structuredClone(pod);
  (broken.spec!.containers[0].ports![0] as { containerPort: unknown }).containerPort = 'five thousand';
  assert.throws(() => validate(broken as unknown as Record<string, unknown>), /containerPort/);
  const noImage = structuredClone(pod);
  delete (noImage.spec!.containers[0] as { name?: string }).name;
  assert.throws(() => validate(noImage as unknown as Record<string, unknown>), /name/);
});

test('the pod: NET_ADMIN, /dev/net/tun, the ConfigMap as --config, readiness from ul2tp daemon status', () => {
  const objs = load('ul2tp.yaml');
  const pod = objs.find((o) => o.kind === 'Pod') as unknown as IPod;
  const cm = objs.find((o) => o.kind === 'ConfigMap') as unknown as IConfigMap;
  const c = pod.spec!.containers[0];
  assert.ok(c.securityContext?.capabilities?.add?.includes('NET_ADMIN'));
  assert.notEqual(c.securityContext?.privileged, true, 'not privileged');
  const vol = (name: string) => pod.spec!.volumes!.find((v) => v.name === name);
  const tunMount = c.volumeMounts!.find((m) => m.mountPath === '/dev/net/tun');
  assert.deepEqual(vol(tunMount!.name)?.hostPath, { path: '/dev/net/tun', type: 'CharDevice' });
  // --config FILE is a file of the mounted ConfigMap.
  const args = c.args ?? [];
  const file = args[args.indexOf('--config') + 1];
  const cfgMount = c.volumeMounts!.find((m) => file.startsWith(m.mountPath + '/'));
  assert.ok(cfgMount, `${file} is on a mounted volume`);
  assert.equal(vol(cfgMount.name)?.configMap?.name, cm.metadata!.name);
  const key = file.slice(cfgMount.mountPath.length + 1);
  assert.match(cm.data![key], /^l2tp add tunnel /m, 'the ConfigMap holds the configuration file');
  assert.deepEqual(c.readinessProbe?.exec?.command, ['ul2tp', 'daemon', 'status']);
});

test('the Dockerfile has a HEALTHCHECK: ul2tp daemon status', () => {
  const df = readFileSync(join(ROOT, 'packaging', 'Dockerfile'), 'utf8');
  assert.match(df, /^HEALTHCHECK .*CMD \["ul2tp", "daemon", "status"\]$/m);
});
