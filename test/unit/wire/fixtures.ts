/**
 * Loads the hand-written vectors in test/fixtures/wire/*.hex (written from
 * docs/protocol.md's layouts and test vectors (§1, §7), never from our encoder). A file is
 * an annotated hex dump; its `#!` line holds key=value metadata.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { hexDumpToBytes } from '../../../src/wire/hex.js';

/** dist/test/unit/wire → repository root → test/fixtures/wire (also works from the sources). */
const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/wire/', import.meta.url));
const FIXTURES_SRC = fileURLToPath(new URL('../../fixtures/wire/', import.meta.url));

export interface Fixture {
  name: string;
  meta: Record<string, string>;
  bytes: Buffer;
}

export function loadFixture(name: string): Fixture {
  let text: string;
  try {
    text = readFileSync(FIXTURES + name + '.hex', 'utf8');
  } catch {
    text = readFileSync(FIXTURES_SRC + name + '.hex', 'utf8');
  }
  const meta: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('#!')) continue;
    for (const kv of line.slice(2).trim().split(/\s+/)) {
      const i = kv.indexOf('=');
      meta[kv.slice(0, i)] = kv.slice(i + 1);
    }
  }
  return { name, meta, bytes: hexDumpToBytes(text) };
}

/** The 42-byte ARP request of docs/protocol.md §7, typed from the spec. */
export const ARP_FRAME = Buffer.from(
  'ffffffffffff020000000001080600010800060400010200000000010a000001' + '0000000000000a000002',
  'hex',
);

export interface Vector extends Fixture {
  encap: 'udp' | 'ip';
  cookie: string;
  l2spec: 'none' | 'default';
  sequenced: boolean;
  ns: number;
  session: number;
  hdrLen: number;
}

/** The 12 combinations encap udp/ip × cookie 0/4/8 × l2spec none/default. */
export const VECTOR_NAMES = ['udp', 'ip'].flatMap((e) => ['c0', 'c4', 'c8'].flatMap((c) => ['none', 'default'].map((l) => `${e}-${c}-${l}`)));

export function loadVector(name: string): Vector {
  const f = loadFixture(name);
  const m = f.meta;
  return {
    ...f,
    encap: m.encap as 'udp' | 'ip',
    cookie: m.cookie,
    l2spec: m.l2spec as 'none' | 'default',
    sequenced: m.seq === 'send',
    ns: Number(m.ns),
    session: Number(m.session),
    hdrLen: Number(m.hdr),
  };
}
