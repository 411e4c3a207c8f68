/**
 * Test helper run inside a namespace: prints the JSON result of one control
 * request (default `status`) to stdout, exit 1 if the daemon is not running.
 * Usage: node status.js [op]   e.g. op = session_get for raw counters.
 * Talks through the library client (src/api/client.ts); never starts a daemon.
 */
import { connect } from '../../../src/api/client.js';
import type { Op } from '../../../src/control/protocol.js';

const op = (process.argv[2] ?? 'status') as Op;
try {
  const c = await connect({ autostart: false });
  const r = await c.request(op, {});
  c.close();
  process.stdout.write(JSON.stringify(r) + '\n');
  process.exit(0);
} catch (e) {
  const err = e as { code?: string; errno?: string; message?: string };
  process.stderr.write(JSON.stringify({ code: err.code, errno: err.errno, message: err.message }) + '\n');
  process.exit(1);
}
