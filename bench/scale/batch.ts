/**
 * Batch-mode benchmark: N sessions (in N/per tunnels) created by one
 * `ul2tp -batch FILE`, deleted by one `ul2tp -batch FILE` of `del session`
 * lines, then the same through the declarative configuration: a daemon
 * started with `--config` (apply at start) and `ul2tp daemon reload` of an
 * emptied file (every session and tunnel removed). Each phase is the wall
 * time of the whole command, process start included.
 *
 * Run (root): node dist/bench/scale/batch.js [--sessions 1000] [--per 10] [--backend koffi|native-free] [--out FILE]
 * (npm run bench:batch -- ...). Writes a Markdown table (default bench/scale/latest/batch.md).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BenchError } from '../lib/sys.js';
import { STATUS } from '../../support/ul2tp.js';
import { IP } from '../../support/ip.js';
import { Netns } from '../../support/netns.js';
import { CLI, ROOT, cleanupAll, installCleanupHandlers, killPid, stopPid, tempDir } from '../../support/proc.js';

interface Options {
  sessions: number;
  per: number;
  backend: string;
  out: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { sessions: 1000, per: 10, backend: 'koffi', out: join(ROOT, 'bench', 'scale', 'latest', 'batch.md') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new BenchError(`${a} needs a value`);
      return x;
    };
    const n = (): number => {
      const x = Number(v());
      if (!Number.isInteger(x) || x < 1) throw new BenchError(`${a}: expected a positive integer`);
      return x;
    };
    if (a === '--sessions') o.sessions = n();
    else if (a === '--per') o.per = n();
    else if (a === '--backend') o.backend = v();
    else if (a === '--out') o.out = v();
    else throw new BenchError(`unknown option ${a}`);
  }
  return o;
}

const log = (s: string): void => void process.stderr.write(s + '\n');

function files(o: Options, dir: string): { create: string; del: string; conf: string } {
  const tunnels = Math.ceil(o.sessions / o.per);
  const create: string[] = [];
  const del: string[] = [];
  for (let t = 1; t <= tunnels; t++) {
    create.push(`l2tp add tunnel tunnel_id ${t} peer_tunnel_id ${t} local 192.0.2.1 remote 192.0.2.2 udp_sport ${10000 + t} udp_dport ${10000 + t}`);
    for (let s = 1; s <= o.per && (t - 1) * o.per + s <= o.sessions; s++) {
      create.push(`l2tp add session tunnel_id ${t} session_id ${s} peer_session_id ${s}`);
      del.push(`l2tp del session tunnel_id ${t} session_id ${s}`);
    }
  }
  const w = (name: string, lines: string[]): string => {
    const p = join(dir, name);
    writeFileSync(p, lines.join('\n') + '\n');
    return p;
  };
  return { create: w('create.batch', create), del: w('delete.batch', del), conf: w('site.conf', create) };
}

async function main(): Promise<void> {
  installCleanupHandlers();
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new BenchError('the batch benchmark needs root');
  const ns = new Netns('bba');
  ns.ip('link', 'add', 'bbd0', 'type', 'veth', 'peer', 'name', 'bbd1');
  ns.ip('addr', 'add', '192.0.2.1/24', 'dev', 'bbd0');
  ns.ip('link', 'set', 'bbd0', 'up');
  const env = { ...process.env, UL2TP_RUNDIR: tempDir('ul2tp-batch-'), UL2TP_BACKEND: o.backend };
  const dir = tempDir('ul2tp-batchf-');
  const f = files(o, dir);
  const timed = (what: string, args: string[]): number => {
    const t0 = performance.now();
    const r = ns.exec(process.execPath, [CLI, ...args], { env, timeoutMs: 1800_000 });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new BenchError(`${what}: exit ${r.status}: ${r.stderr.slice(0, 500)}`);
    log(`${what}: ${(ms / 1000).toFixed(2)} s`);
    return ms;
  };
  const count = (): number => {
    const r = ns.exec(process.execPath, [CLI, '-j', 'show', 'session'], { env, timeoutMs: 600_000 });
    return (JSON.parse(r.stdout || '[]') as unknown[]).length;
  };
  const rows: Array<[string, number]> = [];
  try {
    timed('start the daemon', ['show', 'tunnel']);
    rows.push([`create ${o.sessions} sessions (ul2tp -batch)`, timed('create', ['-batch', f.create])]);
    if (count() !== o.sessions) throw new BenchError('not every session was created');
    rows.push([`delete ${o.sessions} sessions (ul2tp -batch of del session lines)`, timed('delete', ['-batch', f.del])]);
    if (count() !== 0) throw new BenchError('not every session was deleted');

    // Declarative: stop the background daemon, start one with --config, then reload an emptied file.
    const pid = (JSON.parse(ns.exec(process.execPath, [STATUS], { env }).stdout) as { pid: number }).pid;
    await stopPid(pid);
    const t0 = performance.now();
    const d = spawn(IP, ['netns', 'exec', ns.name, process.execPath, CLI, 'daemon', '--config', f.conf], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    d.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    while (!/listening on/.test(err)) {
      if (d.exitCode !== null) throw new BenchError(`daemon --config exited: ${err}`);
      if (performance.now() - t0 > 1800_000) throw new BenchError('daemon --config: no start');
      await new Promise((r) => setTimeout(r, 20));
    }
    const startMs = performance.now() - t0;
    log(`daemon --config start: ${(startMs / 1000).toFixed(2)} s`);
    rows.push([`daemon --config: start with ${o.sessions} sessions`, startMs]);
    if (count() !== o.sessions) throw new BenchError('--config did not create every session');
    writeFileSync(f.conf, '# empty\n');
    rows.push([`daemon reload of an emptied file (removes ${o.sessions} sessions)`, timed('reload', ['daemon', 'reload'])]);
    if (count() !== 0) throw new BenchError('reload did not remove every session');
    d.kill('SIGTERM');
    setTimeout(() => killPid(d.pid), 5000).unref();
  } finally {
    ns.destroy();
  }
  const md =
    `# Batch mode and --config (${new Date().toISOString().slice(0, 10)}, ${o.backend}, ${o.sessions} sessions in ${Math.ceil(o.sessions / o.per)} tunnels)\n\n` +
    `Wall time of each whole command (process start included), \`node dist/bench/scale/batch.js --sessions ${o.sessions}\`.\n\n` +
    `| phase | seconds | per session |\n|---|---:|---:|\n` +
    rows.map(([k, ms]) => `| ${k} | ${(ms / 1000).toFixed(2)} | ${(ms / o.sessions).toFixed(2)} ms |`).join('\n') +
    '\n';
  mkdirSync(dirname(o.out), { recursive: true });
  writeFileSync(o.out, md);
  process.stdout.write(md);
}

main().then(
  () => cleanupAll(),
  (e: unknown) => {
    cleanupAll();
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
