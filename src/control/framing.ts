/**
 * JSON-lines framing of the control socket: one JSON value per line,
 * terminated by a single '\n' (JSON.stringify never emits a raw newline),
 * UTF-8. Requests are at most MAX_LINE bytes; replies may be much longer (a
 * dump of many sessions), up to MAX_REPLY_LINE.
 */

/** Longest request line in bytes, newline excluded. */
export const MAX_LINE = 65536;
/** Longest reply line the client accepts (a dump of many sessions is long). */
export const MAX_REPLY_LINE = 64 * 1024 * 1024;

/** One message per line. JSON.stringify escapes newlines inside strings. */
export function encodeLine(msg: unknown): string {
  return JSON.stringify(msg) + '\n';
}

/**
 * Splits a byte stream into '\n'-terminated lines of at most `maxLine` bytes
 * (newline excluded) and decodes each as UTF-8. A line that grows past the
 * limit is reported once through `onOversize` as soon as the limit is crossed
 * (so a peer cannot make us buffer without bound); its remaining bytes are
 * dropped up to and including the next newline, then framing resumes.
 */
export class LineFramer {
  private parts: Buffer[] = [];
  private size = 0;
  private discarding = false;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onOversize: () => void,
    private readonly maxLine: number = MAX_LINE,
  ) {}

  /** Bytes of the current incomplete line held in memory. */
  get pending(): number {
    return this.size;
  }

  push(chunk: Buffer | string): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let pos = 0;
    while (pos < buf.length) {
      const nl = buf.indexOf(0x0a, pos);
      const end = nl < 0 ? buf.length : nl;
      const seg = buf.subarray(pos, end);
      if (this.discarding) {
        if (nl >= 0) this.discarding = false;
      } else if (this.size + seg.length > this.maxLine) {
        this.parts = [];
        this.size = 0;
        this.discarding = nl < 0;
        this.onOversize();
      } else if (nl >= 0) {
        const line = this.parts.length === 0 ? seg.toString('utf8') : Buffer.concat([...this.parts, seg]).toString('utf8');
        this.parts = [];
        this.size = 0;
        this.onLine(line);
      } else {
        // The chunk may be reused by the caller: keep a copy.
        this.parts.push(Buffer.from(seg));
        this.size += seg.length;
      }
      if (nl < 0) break;
      pos = nl + 1;
    }
  }
}
