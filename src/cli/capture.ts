/**
 * `ul2tp capture`: the L2TP packets the daemon sends and receives, as
 * summary lines (`-j`: one JSON object per packet), or a pcap file.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { checkSessionList, checkTunnelList } from '../control/validate.js';
import type { CapturedPacket } from '../api/client.js';
import { idValue, parseKeywords, positiveInteger, usageExit, withDaemon, type OwnKeyword } from './own-command.js';
import {
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
  innerFrame,
  outerPacket,
  pcapHeader,
  pcapRecord,
  summarize,
  summaryLine,
  type SessionView,
  type TunnelView,
  type WirePacket,
} from './pcap.js';
import type { CliIo } from './run.js';

export const CAPTURE_HELP = `Usage: ul2tp capture [ tunnel_id ID ] [ session_id ID ] [ -w FILE ] [ --inner ] [ -c COUNT ]

Captures the L2TP packets the daemon sends and receives (every tunnel and
session unless filtered; session_id is the local session id).
  -w FILE   write a pcap file ("-" = stdout) instead of one line per packet.
            Outer packets (default): IPv4/IPv6 + UDP headers are rebuilt from
            the tunnel's addresses and ports, link type RAW (101); decode with
            e.g. tshark -r FILE -d udp.port==PORT,l2tp -o l2tp.cookie_size:...
  --inner   the Ethernet frames carried by the sessions (link type 1).
  -c COUNT  stop after COUNT packets (default: until interrupted).
  -j        ("ul2tp -j capture") one JSON object per packet, not a line: {"time",
            "dir", "encap", "tunnel_id", "session_id", "seq"?, "len", "frame"}.
Transmitted packets are captured as encapsulated, before any impairment.
Once the daemon captures, a "listening on ..." line goes to stderr.
Not available with the native-free backend.
`;

export interface CaptureArgs {
  tunnelId: number;
  sessionId: number;
  file: string | null;
  inner: boolean;
  count: number;
}

const CAPTURE_KEYWORDS: ReadonlyArray<OwnKeyword<CaptureArgs>> = [
  { names: ['tunnel_id', 'tid'], value: idValue, apply: (a, v) => void (a.tunnelId = v as number) },
  { names: ['session_id', 'sid'], value: idValue, apply: (a, v) => void (a.sessionId = v as number) },
  { names: ['-w'], value: (t) => t, apply: (a, v) => void (a.file = v as string) },
  { names: ['--inner', 'inner'], apply: (a) => void (a.inner = true) },
  { names: ['-c', 'count'], value: positiveInteger, apply: (a, v) => void (a.count = v as number) },
];

export function parseCaptureArgs(args: readonly string[]): CaptureArgs {
  return parseKeywords(args, CAPTURE_KEYWORDS, { tunnelId: 0, sessionId: 0, file: null, inner: false, count: 0 });
}

/** Where packets go: a pcap stream or summary lines. */
interface Sink {
  packet(p: WirePacket): boolean; // false = not written (unknown session for --inner)
  close(): Promise<void>;
}

function pcapSink(out: WriteStream | NodeJS.WriteStream, inner: boolean, tunnels: Map<number, TunnelView>, sessions: Map<string, SessionView>): Sink {
  out.write(pcapHeader(inner ? LINKTYPE_ETHERNET : LINKTYPE_RAW));
  return {
    packet(p) {
      let data: Buffer | null;
      if (inner) {
        const s = sessions.get(`${p.tunnel_id}/${p.session_id}`);
        data = s ? innerFrame(p, s) : null;
      } else {
        const t = tunnels.get(p.tunnel_id);
        data = t ? outerPacket(p, t) : null;
      }
      if (data === null) return false;
      out.write(pcapRecord(p.t, data));
      return true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (out === process.stdout) resolve();
        else (out as WriteStream).end(() => resolve());
      }),
  };
}

/** What a capture listens on, for its start line: "tunnel 3000 session 1000", "every tunnel and session". */
function captureScope(a: CaptureArgs): string {
  const parts: string[] = [];
  if (a.tunnelId !== 0) parts.push(`tunnel ${a.tunnelId}`);
  if (a.sessionId !== 0) parts.push(`session ${a.sessionId}`);
  return parts.length === 0 ? 'every tunnel and session' : parts.join(' ');
}

export async function runCapture(argv: readonly string[], io: CliIo, json = false): Promise<number> {
  let a: CaptureArgs;
  try {
    a = parseCaptureArgs(argv);
  } catch (e) {
    return usageExit(io, e, CAPTURE_HELP);
  }
  // The tunnels' addresses and the sessions' layouts (for headers and summaries).
  let tunnelList: TunnelView[] = [];
  let sessionList: SessionView[] = [];
  let stream: AsyncIterableIterator<CapturedPacket> | null = null;
  const status = await withDaemon(io, async (t) => {
    tunnelList = checkTunnelList(await t.request('tunnel_get', {}));
    sessionList = checkSessionList(await t.request('session_get', {}));
    if (t.capture === undefined) throw new Error('this connection cannot capture');
    // The daemon captures from here on (tcpdump says the same).
    stream = await t.capture({ tunnel_id: a.tunnelId, session_id: a.sessionId });
    return 0;
  });
  if (status !== 0 || stream === null) return status;
  const packets: AsyncIterableIterator<CapturedPacket> = stream;
  io.stderr(`listening on ${captureScope(a)}${a.file === null ? '' : a.inner ? ', link-type EN10MB (Ethernet)' : ', link-type RAW (Raw IPv4/IPv6)'}\n`);
  const tunnels = new Map(tunnelList.map((t) => [t.tunnel_id, t]));
  const sessions = new Map(sessionList.map((s) => [`${s.tunnel_id}/${s.session_id}`, s]));

  let sink: Sink;
  if (a.file !== null) {
    const out = a.file === '-' ? process.stdout : createWriteStream(a.file, { mode: 0o644 });
    sink = pcapSink(out, a.inner, tunnels, sessions);
  } else {
    sink = {
      packet(p) {
        const s = sessions.get(`${p.tunnel_id}/${p.session_id}`);
        io.stdout((json ? JSON.stringify(summarize(p, s)) : summaryLine(p, s)) + '\n');
        return true;
      },
      close: async () => {},
    };
  }

  let got = 0;
  let code = 0;
  const onSig = (): void => void packets.return?.();
  process.on('SIGINT', onSig);
  process.on('SIGTERM', onSig);
  try {
    for await (const p of packets) {
      if (sink.packet(p)) got++;
      if (a.count > 0 && got >= a.count) break;
    }
  } catch (e) {
    io.stderr(`Error: ${(e as Error).message}\n`);
    code = 1;
  } finally {
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
  }
  await sink.close();
  if (code === 0 && a.file !== null) io.stderr(`${got} packet${got === 1 ? '' : 's'} captured\n`);
  return code;
}
