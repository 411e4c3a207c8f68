/** Whether a network interface of that name exists in this namespace (sysfs). Cold path. */
import { readFileSync } from 'node:fs';

export function interfaceExists(name: string): boolean {
  try {
    readFileSync(`/sys/class/net/${name}/ifindex`);
    return true;
  } catch {
    return false;
  }
}
