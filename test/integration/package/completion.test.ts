/**
 * completion/ul2tp.bash: loads in bash, completes commands, keywords and
 * values, and the ids of the tunnels and sessions the namespace's daemon has
 * (without starting a daemon where none runs).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Netns, netnsUnavailable } from '../../../support/netns.js';
import { CLI, ROOT, run } from '../../../support/proc.js';

const SCRIPT = join(ROOT, 'completion', 'ul2tp.bash');
const bashMissing = run('bash', ['--version']).status === 0 ? '' : 'bash not found';

/** A bash script that sources the completion and prints the candidates for each line in `lines`. */
function driver(lines: string[][]): string {
  const calls = lines.map((w) => `c ${w.map((x) => `'${x}'`).join(' ')}`).join('\n');
  return `set -u
source '${SCRIPT}'
complete -p ul2tp
c() { COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); COMPREPLY=(); _ul2tp; echo "\${COMPREPLY[*]}"; }
${calls}
`;
}

test('the completion script loads in bash and completes commands, keywords and values', { skip: bashMissing || undefined }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ul2tp-compl-'));
  try {
    const f = join(tmp, 'drive.sh');
    writeFileSync(
      f,
      driver([
        ['ul2tp', ''],
        ['ul2tp', '-j', 'sh'],
        ['ul2tp', 'add', ''],
        ['ul2tp', 'add', 'tunnel', 'udp_'],
        ['ul2tp', 'add', 'tunnel', 'encap', ''],
        ['ul2tp', 'add', 'session', 'l2spec_type', ''],
        ['ul2tp', 'daemon', ''],
        ['ul2tp', 'impair', 'tunnel_id', '1', 'session_id', '2', 'd'],
        // No daemon socket: no ids, and no daemon started.
        ['ul2tp', 'del', 'tunnel', 'tunnel_id', ''],
      ]),
    );
    const r = run('bash', [f], 30_000, { ...process.env, UL2TP_RUNDIR: join(tmp, 'run') });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.split('\n'), [
      'complete -F _ul2tp ul2tp',
      'add del show help stats capture impair daemon save',
      'show',
      'tunnel session',
      'udp_sport udp_dport udp_csum',
      'udp ip',
      'none default',
      'status reload',
      'duplicate distance delay',
      '',
      '',
    ]);
    assert.equal(run('ls', [join(tmp, 'run')]).status === 0, false, 'completion started no daemon');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('completion offers the ids of existing tunnels and sessions', { skip: netnsUnavailable() || bashMissing || undefined, timeout: 120_000 }, (t) => {
  const ns = new Netns('ul2cp');
  const tmp = mkdtempSync(join(tmpdir(), 'ul2tp-compl-'));
  t.after(() => {
    ns.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });
  ns.ok('add', 'tunnel', 'tunnel_id', '3000', 'peer_tunnel_id', '4000', 'encap', 'udp', 'local', '127.0.0.1', 'remote', '127.0.0.2', 'udp_sport', '5000', 'udp_dport', '6000');
  ns.ok('add', 'tunnel', 'tunnel_id', '3100', 'peer_tunnel_id', '4100', 'encap', 'ip', 'local', '127.0.0.1', 'remote', '127.0.0.3');
  ns.ok('add', 'session', 'tunnel_id', '3000', 'session_id', '1000', 'peer_session_id', '2000', 'name', 'cpa0');
  ns.ok('add', 'session', 'tunnel_id', '3100', 'session_id', '1100', 'peer_session_id', '2100', 'name', 'cpb0');
  // `ul2tp` on PATH, as after `npm install -g`.
  const bin = join(tmp, 'bin');
  run('mkdir', ['-p', bin]);
  symlinkSync(CLI, join(bin, 'ul2tp'));
  const f = join(tmp, 'drive.sh');
  writeFileSync(
    f,
    driver([
      ['ul2tp', 'del', 'tunnel', 'tunnel_id', ''],
      ['ul2tp', 'show', 'session', 'tunnel_id', '3100', 'session_id', ''],
      ['ul2tp', 'del', 'session', 'session_id', ''],
      ['ul2tp', 'add', 'session', 'tid', '3'],
      ['ul2tp', 'add', 'tunnel', 'tunnel_id', ''],
    ]),
  );
  const r = ns.exec('env', [`PATH=${bin}:${process.env.PATH}`, 'bash', f], 60_000);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.split('\n').slice(1), ['3000 3100', '1100', '1000 1100', '3000 3100', '', '']);
});
