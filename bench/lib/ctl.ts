/**
 * Run inside a namespace: one control request, result JSON on stdout.
 * Usage: node dist/bench/lib/ctl.js [op] [attrs-json]   (default op: status)
 * Exit 1 (message on stderr) when the daemon is absent or the request fails.
 */
import { CtlClient } from './ctl-client.js';

const op = process.argv[2] ?? 'status';
const attrs = process.argv[3] ? (JSON.parse(process.argv[3]) as Record<string, unknown>) : {};
try {
  const c = await CtlClient.open(undefined, 5000);
  const r = await c.request(op, attrs);
  process.stdout.write(JSON.stringify(r) + '\n');
  c.close();
  process.exit(0);
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
}
