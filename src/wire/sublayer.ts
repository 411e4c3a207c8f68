/**
 * Default L2-Specific Sublayer, RFC 3931 §4.6 (docs/protocol.md §1.5).
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |x|S|x|x|x|x|x|x|              Sequence Number                  |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * RFC 3931 §4.6: "The S (Sequence) bit is set to 1 when the Sequence Number
 * contains a valid number for this sequenced frame. If the S bit is set to
 * zero, the Sequence Number contents are undefined and MUST be ignored by
 * the receiver." The x bits are sent as 0 and ignored on receive (Linux
 * reads only S and the low 24 bits). Sequence numbers are 24-bit, start at 0,
 * and 0 is a valid value (§4.6.1, Appendix C).
 *
 * Which sessions carry the sublayer is configuration (`l2spec_type`), never
 * signalled in the packet.
 */

/** Length of the default sublayer on the wire. */
export const L2SPEC_LEN = 4;
/** S bit in the 32-bit word (0x40 of the first byte). */
export const L2SPEC_S = 0x4000_0000;
/** S bit within the first byte. */
export const L2SPEC_S_BYTE = 0x40;
/** Sequence field mask (24 bits). */
export const L2SPEC_SEQ_MASK = 0x00ff_ffff;

/** The raw 32-bit word at `off` (unsigned). Caller guarantees 4 bytes. */
export const sublayerWordAt = (b: Buffer, off: number): number => b.readUInt32BE(off);

/** S bit of the sublayer at `off`. */
export const sublayerSequencedAt = (b: Buffer, off: number): boolean => (b[off] & L2SPEC_S_BYTE) !== 0;

/** 24-bit sequence number at `off` (meaningless when S = 0). */
export const sublayerSeqAt = (b: Buffer, off: number): number =>
  ((b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;

/**
 * Write the sublayer word the way Linux does: `0x40000000 | ns` when
 * sequenced, otherwise 0. Writes exactly 4 bytes, never allocates.
 */
export function writeSublayer(b: Buffer, off: number, sequenced: boolean, ns: number): void {
  if (sequenced) {
    b[off] = L2SPEC_S_BYTE;
    b[off + 1] = (ns >>> 16) & 0xff;
    b[off + 2] = (ns >>> 8) & 0xff;
    b[off + 3] = ns & 0xff;
  } else {
    b[off] = 0;
    b[off + 1] = 0;
    b[off + 2] = 0;
    b[off + 3] = 0;
  }
}

/** True when [off, off+len) has room for the sublayer starting at `at`. */
export const checkSublayer = (off: number, len: number, at: number): boolean => at >= off && at + L2SPEC_LEN <= off + len;

/** Parsed sublayer (control plane, tests). `ns` is the 24-bit field even when not sequenced. */
export interface SublayerRepr {
  sequenced: boolean;
  ns: number;
}

export const SublayerRepr = {
  headerLen(): number {
    return L2SPEC_LEN;
  },
  parse(b: Buffer, off: number): SublayerRepr {
    if (off < 0 || off + L2SPEC_LEN > b.length) throw new RangeError('sublayer: truncated');
    return { sequenced: sublayerSequencedAt(b, off), ns: sublayerSeqAt(b, off) };
  },
  /** Writes 4 bytes; an unsequenced repr is written as 0 (the sequence field is not kept). */
  emit(r: SublayerRepr, b: Buffer, off: number): number {
    if (off < 0 || off + L2SPEC_LEN > b.length) throw new RangeError('sublayer: buffer too small');
    writeSublayer(b, off, r.sequenced, r.ns & L2SPEC_SEQ_MASK);
    return L2SPEC_LEN;
  },
};
