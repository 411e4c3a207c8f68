/**
 * The paths the end-to-end benchmark compares. Each path is set up between
 * the two namespaces of the rig, measured, and torn down again before the
 * next one (so idle tunnels never compete with the one under test).
 *
 * Overlay MTU per path = 1500 − encapsulation overhead (docs/protocol.md §3.4: outer
 * IPv4 20 + UDP 8 when encap udp + L2TPv3 header + inner Ethernet 14), so
 * outer packets never need fragmenting; the harness checks that with the
 * kernel's fragmentation counters.
 */
import { join } from 'node:path';
import { tunnelOverhead } from '../../src/wire/l2tpv3.js';
import { CTL, BenchError } from '../lib/sys.js';
import { IP } from '../../support/ip.js';
import { type Netns, uniq } from '../../support/netns.js';
import { CLI, ROOT, run, sleep, stopPid, tempDir, which, alive } from '../../support/proc.js';

export const UNDERLAY_MTU = 1500;

export interface Rig {
  a: Netns;
  b: Netns;
  /** Underlay addresses and veth names. */
  a4: string;
  b4: string;
  vethA: string;
  vethB: string;
  /** Extra environment for the ul2tp daemons of the next setup (the --workers sweep sets UL2TP_DAEMON_ENTRY). */
  daemonEnv?: Record<string, string>;
}

export interface TunnelProc {
  label: string;
  pid: number;
  /** true for ul2tp daemons (RSS is sampled and reported against the 150 MB target). */
  daemon: boolean;
}

export interface PathRun {
  /** Overlay address of side B (iperf3 server, ping target). */
  dst: string;
  mtu: number;
  procs: TunnelProc[];
  /** ul2tp paths: one more tunnel + session like the first (ids, ports and overlay subnet offset by k ≥ 1); resolves to its side-B address. */
  addTunnel?(k: number): Promise<string>;
  teardown(): Promise<void>;
}

export interface PathDef {
  id: string;
  label: string;
  /** Encapsulation overhead on a 1500-byte IPv4 underlay (bytes); overlay MTU = 1500 − overhead. */
  overhead: number;
  /** Why this path cannot run here ('' when it can). */
  unavailable(): string;
  setup(rig: Rig, index: number): Promise<PathRun>;
}

/** Outer IPv4 + (UDP) + L2TPv3 header + inner Ethernet header (src/wire/l2tpv3.ts). */
export function l2tpOverhead(encap: 'udp' | 'ip', cookieLen: number, l2spec: 'default' | 'none'): number {
  return tunnelOverhead(encap, 4, cookieLen, l2spec === 'default');
}

function overlay(index: number): [string, string] {
  return [`10.${60 + index}.0.1`, `10.${60 + index}.0.2`];
}

function addrUp(ns: Netns, ifname: string, addr: string, mtu: number): void {
  ns.ip('link', 'set', ifname, 'mtu', String(mtu));
  ns.ip('addr', 'add', `${addr}/24`, 'dev', ifname);
  ns.ip('link', 'set', ifname, 'up');
}

/** Wait until side A reaches `dst` (one ping answered), or throw. */
async function reachable(rig: Rig, dst: string, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = rig.a.exec('ping', ['-c', '1', '-W', '1', '-q', dst], { timeoutMs: 5000 });
    if (r.status === 0) return;
    if (Date.now() > end) throw new BenchError(`${what}: ${dst} does not answer pings after ${timeoutMs / 1000} s`);
    await sleep(200);
  }
}

// ---------------------------------------------------------------------------
// ul2tp

interface Ul2tpOpts {
  encap: 'udp' | 'ip';
  backend: 'koffi' | 'native-free';
  cookies?: [string, string];
  seq?: 'both';
  /** Extra `add tunnel` arguments (e.g. `udp_csum on`). */
  tunnelArgs?: string[];
  /** Extra daemon environment (e.g. `UL2TP_OFFLOAD=0`). */
  env?: Record<string, string>;
}

function ul2tpPath(id: string, label: string, o: Ul2tpOpts): PathDef {
  const cookieLen = o.cookies ? o.cookies[0].length / 2 : 0;
  const overhead = l2tpOverhead(o.encap, cookieLen, 'default');
  return {
    id,
    label,
    overhead,
    unavailable: () => '',
    async setup(rig, index) {
      const mtu = UNDERLAY_MTU - overhead;
      const [oa, ob] = overlay(index);
      const runDir = tempDir('ul2tp-bench-');
      const env = { ...process.env, ...o.env, ...rig.daemonEnv, UL2TP_RUNDIR: runDir, UL2TP_BACKEND: o.backend };
      const cli = (ns: Netns, ...args: string[]) => ns.must(process.execPath, [CLI, ...args], { env, timeoutMs: 30_000 });
      const sides = [
        { ns: rig.a, tid: 11, ptid: 21, sid: 111, psid: 211, local: rig.a4, remote: rig.b4, sp: 5101, dp: 5201, ck: o.cookies?.[0], pck: o.cookies?.[1], ifn: 'bl2a', addr: oa },
        { ns: rig.b, tid: 21, ptid: 11, sid: 211, psid: 111, local: rig.b4, remote: rig.a4, sp: 5201, dp: 5101, ck: o.cookies?.[1], pck: o.cookies?.[0], ifn: 'bl2b', addr: ob },
      ];
      const pids: number[] = [];
      const made: number[] = [];
      const teardown = async () => {
        for (const k of made) for (const s of sides) s.ns.exec(process.execPath, [CLI, 'del', 'tunnel', 'tunnel_id', String(s.tid + k)], { env, timeoutMs: 15_000 });
        for (const p of pids) await stopPid(p);
      };
      /** Tunnel + session number k (0 = the path's own) on side s. */
      const tunnelUp = (s: (typeof sides)[number], k: number, addr: string) => {
        if (!made.includes(k)) made.push(k);
        const udp = o.encap === 'udp' ? ['udp_sport', String(s.sp + k), 'udp_dport', String(s.dp + k)] : [];
        cli(s.ns, 'add', 'tunnel', 'tunnel_id', String(s.tid + k), 'peer_tunnel_id', String(s.ptid + k), 'encap', o.encap, 'local', s.local, 'remote', s.remote, ...udp, ...(o.tunnelArgs ?? []));
        const ck = [...(s.ck ? ['cookie', s.ck] : []), ...(s.pck ? ['peer_cookie', s.pck] : [])];
        const seq = o.seq ? ['seq', o.seq] : [];
        const ifn = k ? `${s.ifn}${k}` : s.ifn;
        cli(s.ns, 'add', 'session', 'name', ifn, 'tunnel_id', String(s.tid + k), 'session_id', String(s.sid + k), 'peer_session_id', String(s.psid + k), ...ck, ...seq);
        addrUp(s.ns, ifn, addr, mtu);
      };
      try {
        for (const s of sides) {
          tunnelUp(s, 0, s.addr);
          const status = JSON.parse(s.ns.must(process.execPath, [CTL, 'status'], { env, timeoutMs: 10_000 })) as { pid: number; backend: string };
          pids.push(status.pid);
          if (!status.backend.includes(o.backend === 'koffi' ? 'koffi' : 'native')) {
            throw new BenchError(`${label}: daemon in ${s.ns.name} runs backend ${status.backend}, wanted ${o.backend}`);
          }
        }
        await reachable(rig, ob, label);
      } catch (e) {
        await teardown();
        throw e;
      }
      return {
        dst: ob,
        mtu,
        procs: [
          { label: 'ul2tp A', pid: pids[0], daemon: true },
          { label: 'ul2tp B', pid: pids[1], daemon: true },
        ],
        async addTunnel(k) {
          const [xa, xb] = overlay(index).map((a) => a.replace(/\.0\.(\d)$/, `.${k}.$1`));
          tunnelUp(sides[0], k, xa);
          tunnelUp(sides[1], k, xb);
          await reachable(rig, xb, `${label}, tunnel ${k + 1}`);
          return xb;
        },
        teardown,
      };
    },
  };
}

// ---------------------------------------------------------------------------
// Tunnels run by one process per side that makes its own TAP (QEMU, the C floor)

interface TapSide {
  ns: Netns;
  src: string;
  dst: string;
  sp: number;
  dp: number;
  tx: number;
  rx: number;
}

interface TapProcOpts {
  id: string;
  label: string;
  overhead: number;
  unavailable(): string;
  /** Prefix of the TAP names (a unique suffix is added). */
  tapPrefix: string;
  /** Label of a side's process in the CPU figures ("qemu" → "qemu A"). */
  procLabel: string;
  /** The command and arguments that run side `s` with TAP `tap`. */
  command(s: TapSide, tap: string): [string, string[]];
}

function tapProcPath(o: TapProcOpts): PathDef {
  return {
    id: o.id,
    label: o.label,
    overhead: o.overhead,
    unavailable: o.unavailable,
    async setup(rig, index) {
      const mtu = UNDERLAY_MTU - o.overhead;
      const [oa, ob] = overlay(index);
      const sides = [
        { ns: rig.a, src: rig.a4, dst: rig.b4, sp: 5301, dp: 5401, tx: 301, rx: 401, addr: oa },
        { ns: rig.b, src: rig.b4, dst: rig.a4, sp: 5401, dp: 5301, tx: 401, rx: 301, addr: ob },
      ];
      const started: Array<{ pid: number; done: Promise<unknown> }> = [];
      const teardown = async () => {
        for (const q of started) await stopPid(q.pid);
      };
      try {
        for (const s of sides) {
          const tap = uniq(o.tapPrefix);
          const [cmd, args] = o.command(s, tap);
          const { child, done } = s.ns.start(cmd, args, { timeoutMs: 24 * 3600_000 });
          let err = '';
          child.stderr!.on('data', (d: string) => (err += d));
          started.push({ pid: child.pid!, done });
          const end = Date.now() + 15_000;
          while (run(IP, ['-n', s.ns.name, 'link', 'show', tap], { timeoutMs: 5000 }).status !== 0) {
            if (!alive(child.pid!) || Date.now() > end) throw new BenchError(`${o.label}: ${cmd} did not start in ${s.ns.name}: ${err.trim()}`);
            await sleep(50);
          }
          addrUp(s.ns, tap, s.addr, mtu);
        }
        await reachable(rig, ob, o.label);
      } catch (e) {
        await teardown();
        throw e;
      }
      return {
        dst: ob,
        mtu,
        procs: started.map((q, i) => ({ label: `${o.procLabel} ${'AB'[i]}`, pid: q.pid, daemon: false })),
        teardown,
      };
    },
  };
}

// QEMU -netdev l2tpv3 (no guest: tap ↔ hub ↔ l2tpv3)

export const QEMU = 'qemu-system-x86_64';

function qemuArgs(tap: string, l2tpv3: string): string[] {
  return [
    '-M', 'none', '-nodefaults', '-nographic', '-display', 'none',
    '-netdev', `tap,id=t0,ifname=${tap},script=no,downscript=no`,
    '-netdev', `l2tpv3,id=l0,${l2tpv3}`,
    '-netdev', 'hubport,id=h0,hubid=0,netdev=t0',
    '-netdev', 'hubport,id=h1,hubid=0,netdev=l0',
  ];
}

function qemuPath(id: string, label: string, encap: 'udp' | 'ip'): PathDef {
  return tapProcPath({
    id,
    label,
    overhead: l2tpOverhead(encap, 0, 'default'),
    unavailable: () => (which(QEMU) ? '' : `${QEMU} not installed (apt-get install qemu-system-x86)`),
    tapPrefix: 'bq',
    procLabel: 'qemu',
    command(s, tap) {
      const opt = [`src=${s.src}`, `dst=${s.dst}`];
      if (encap === 'udp') opt.push('udp=on', `srcport=${s.sp}`, `dstport=${s.dp}`);
      opt.push(`txsession=${s.tx}`, `rxsession=${s.rx}`, 'counter=on');
      return [QEMU, qemuArgs(tap, opt.join(','))];
    },
  });
}

// The C floor: bench/floor/l2tp-floor.c, the least a TAP + UDP socket tunnel can cost per
// frame (one TAP read and one TAP write per frame, UDP in batches, no offloads).

const FLOOR_SRC = join(ROOT, 'bench', 'floor', 'l2tp-floor.c');
let floorBin = '';

/** Compiles the C floor once per bench run (into a temporary directory). */
function floorBinary(): string {
  if (floorBin) return floorBin;
  const out = join(tempDir('ul2tp-floor-'), 'l2tp-floor');
  const r = run('gcc', ['-O2', '-o', out, FLOOR_SRC], { timeoutMs: 60_000 });
  if (r.status !== 0) throw new BenchError(`gcc ${FLOOR_SRC}: ${r.stderr.trim()}`);
  return (floorBin = out);
}

const floorC = tapProcPath({
  id: 'floor-c',
  label: 'C floor (TAP + UDP, no offloads)',
  overhead: l2tpOverhead('udp', 0, 'default'),
  unavailable: () => (which('gcc') ? '' : 'gcc not installed (apt-get install gcc)'),
  tapPrefix: 'bf',
  procLabel: 'floor',
  command: (s, tap) => [floorBinary(), [tap, s.src, s.dst, String(s.sp), String(s.dp), String(s.tx), String(s.rx)]],
});

// ---------------------------------------------------------------------------
// Kernel paths

const vxlan: PathDef = {
  id: 'vxlan',
  label: 'kernel VXLAN',
  overhead: 20 + 8 + 8 + 14,
  unavailable: () => '',
  async setup(rig, index) {
    const mtu = UNDERLAY_MTU - vxlan.overhead;
    const [oa, ob] = overlay(index);
    const made: Array<[Netns, string]> = [];
    const teardown = async () => {
      for (const [ns, ifn] of made) run(IP, ['-n', ns.name, 'link', 'del', ifn], { timeoutMs: 10_000 });
    };
    try {
      for (const [ns, local, remote, dev, addr] of [
        [rig.a, rig.a4, rig.b4, rig.vethA, oa],
        [rig.b, rig.b4, rig.a4, rig.vethB, ob],
      ] as const) {
        ns.ip('link', 'add', 'bvx', 'type', 'vxlan', 'id', '42', 'local', local, 'remote', remote, 'dstport', '4789', 'dev', dev);
        made.push([ns, 'bvx']);
        addrUp(ns, 'bvx', addr, mtu);
      }
      await reachable(rig, ob, 'VXLAN');
    } catch (e) {
      await teardown();
      throw e;
    }
    return { dst: ob, mtu, procs: [], teardown };
  },
};

const veth: PathDef = {
  id: 'veth',
  label: 'bare veth (ceiling)',
  overhead: 0,
  unavailable: () => '',
  async setup(rig) {
    return { dst: rig.b4, mtu: UNDERLAY_MTU, procs: [], teardown: async () => {} };
  },
};

// OpenVPN TAP, no crypto, UDP: 20 IP + 8 UDP + 1 opcode… kept conservative (+ 14 Ethernet).
const openvpn: PathDef = {
  id: 'openvpn',
  label: 'OpenVPN TAP (no crypto)',
  overhead: 20 + 8 + 16 + 14,
  unavailable: () => (which('openvpn') ? '' : 'openvpn not installed (optional; apt-get install openvpn)'),
  async setup(rig, index) {
    const mtu = UNDERLAY_MTU - openvpn.overhead;
    const [oa, ob] = overlay(index);
    const pids: number[] = [];
    const teardown = async () => {
      for (const p of pids) await stopPid(p);
    };
    try {
      for (const [ns, local, remote, addr] of [
        [rig.a, rig.a4, rig.b4, oa],
        [rig.b, rig.b4, rig.a4, ob],
      ] as const) {
        const tap = uniq('bo');
        const { child } = ns.start('openvpn', [
          '--dev', tap, '--dev-type', 'tap', '--proto', 'udp', '--local', local, '--remote', remote, '--port', '1194',
          '--cipher', 'none', '--auth', 'none', '--allow-deprecated-insecure-static-crypto', '--tun-mtu', String(mtu),
          '--verb', '1',
        ], { timeoutMs: 24 * 3600_000 });
        pids.push(child.pid!);
        const end = Date.now() + 15_000;
        while (run(IP, ['-n', ns.name, 'link', 'show', tap], { timeoutMs: 5000 }).status !== 0) {
          if (!alive(child.pid!) || Date.now() > end) throw new BenchError(`OpenVPN did not start in ${ns.name}`);
          await sleep(50);
        }
        addrUp(ns, tap, addr, mtu);
      }
      await reachable(rig, ob, 'OpenVPN');
    } catch (e) {
      await teardown();
      throw e;
    }
    return {
      dst: ob,
      mtu,
      procs: pids.map((pid, i) => ({ label: `openvpn ${'AB'[i]}`, pid, daemon: false })),
      teardown,
    };
  },
};

export const PATHS: PathDef[] = [
  // The default sends IPv4 UDP checksums, so the offload mode sends UDP GSO batches;
  // `udp_csum off` (zero checksums, as the kernel's default) means one sendmmsg slot per
  // packet (the kernel refuses GSO without checksums); no-offload is the per-frame baseline.
  ul2tpPath('ul2tp-udp', 'ul2tp encap udp', { encap: 'udp', backend: 'koffi' }),
  // a tx and an rx thread per worker (the default above 2 cores; up to 2 cores one thread does both directions)
  ul2tpPath('ul2tp-udp-2threads', 'ul2tp encap udp, --worker-threads 2', { encap: 'udp', backend: 'koffi', env: { UL2TP_WORKER_THREADS: '2' } }),
  ul2tpPath('ul2tp-udp-nocsum', 'ul2tp udp, udp_csum off (no GSO)', { encap: 'udp', backend: 'koffi', tunnelArgs: ['udp_csum', 'off'] }),
  ul2tpPath('ul2tp-udp-nooff', 'ul2tp udp, offloads off', {
    encap: 'udp',
    backend: 'koffi',
    env: { UL2TP_OFFLOAD: '0', UL2TP_UDP_GRO: '0' },
  }),
  ul2tpPath('ul2tp-ip', 'ul2tp encap ip', { encap: 'ip', backend: 'koffi' }),
  ul2tpPath('ul2tp-seq-cookie', 'ul2tp udp, seq both + 8-byte cookies', {
    encap: 'udp',
    backend: 'koffi',
    seq: 'both',
    cookies: ['0102030405060708', '1112131415161718'],
  }),
  ul2tpPath('ul2tp-nf', 'ul2tp native-free (udp)', { encap: 'udp', backend: 'native-free' }),
  qemuPath('qemu-udp', 'QEMU l2tpv3 udp', 'udp'),
  qemuPath('qemu-ip', 'QEMU l2tpv3 ip', 'ip'),
  floorC,
  vxlan,
  veth,
  openvpn,
];

/** Reference paths for the ratio columns. */
export const REF_QEMU = 'qemu-udp';
export const REF_CEILING = 'veth';

