/**
 * The published documentation stays in step with the program: the man page
 * covers every option and environment variable the --help texts show, the
 * files the README links to are in the package, and every example of the
 * metrics endpoint uses the same port.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../../support/proc.js';

const CLI = join(ROOT, 'bin', 'ul2tp.js');
const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8');

function help(args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, UL2TP_RUNDIR: '/nonexistent-ul2tp-docs-test' } });
  assert.equal(r.status, 0, `ul2tp ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Man page text as a reader sees it: `\-` is '-', font escapes gone. */
function manText(): string {
  return read('docs/ul2tp.8')
    .replace(/\\-/g, '-')
    .replace(/\\f[BIRP]/g, '')
    .replace(/\\\(em/g, '—');
}

/** Options (-x, --long-name) and UL2TP_* variables mentioned in a help text. */
function mentioned(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/(?<![\w+-])(--?[a-zA-Z][a-zA-Z-]*)/g)) out.add(m[1].replace(/-+$/, ''));
  for (const m of text.matchAll(/\bUL2TP_[A-Z_]+\b/g)) out.add(m[0]);
  return out;
}

test('the man page covers every option and environment variable that --help shows', () => {
  const man = manText();
  const texts: Array<[string, string]> = [
    ['ul2tp --help', help(['--help'])],
    ['ul2tp daemon --help', help(['daemon', '--help'])],
  ];
  for (const c of ['stats', 'capture', 'impair']) texts.push([`ul2tp ${c} --help`, help([c, '--help'])]);
  const missing: string[] = [];
  for (const [where, text] of texts) {
    for (const word of mentioned(text)) {
      const re = new RegExp(`(?<![\\w-])${word.replace(/[-]/g, '\\-')}(?![\\w-])`);
      if (!re.test(man)) missing.push(`${word} (from ${where})`);
    }
  }
  assert.deepEqual(missing, [], 'add these to docs/ul2tp.8');
  assert.match(man, /^\.SH ENVIRONMENT$/m);
});

test('every file the README links to is in the package (or linked absolutely)', () => {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0 && /not found|ENOENT/.test(String(r.error ?? ''))) return; // no npm: nothing to check against
  assert.equal(r.status, 0, r.stderr);
  const files = (JSON.parse(r.stdout) as Array<{ files: Array<{ path: string }> }>)[0].files.map((f) => f.path);
  const readme = read('README.md');
  const links = [...readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]).filter((l) => !/^[a-z]+:/.test(l));
  assert.ok(links.length > 5, 'the README has relative links');
  for (const l of links) {
    const path = l.replace(/^\.\//, '');
    assert.ok(existsSync(join(ROOT, path)), `${l} exists`);
    const shipped = path.endsWith('/') ? files.some((f) => f.startsWith(path)) : files.includes(path);
    assert.ok(shipped, `README links to ${l}, which npm pack leaves out`);
  }
  for (const f of ['LICENSE', 'README.md', 'docs/ul2tp.8', 'completion/ul2tp.bash', 'dist/src/index.d.ts']) assert.ok(files.includes(f), `${f} is shipped`);
});

test('every metrics example uses the same port (the code has no default: --metrics needs ADDR:PORT)', () => {
  const ports = new Map<string, string[]>();
  for (const f of ['README.md', 'docs/usage.md', 'docs/ul2tp.8', 'packaging/ul2tp.service', 'packaging/compose.yaml', 'packaging/k8s/ul2tp.yaml']) {
    if (!existsSync(join(ROOT, f))) continue;
    const text = read(f).replace(/\\-/g, '-');
    for (const m of text.matchAll(/(?:--metrics[ =]|http:\/\/)\[?[0-9a-f.:]*\]?:(\d+)/g)) ports.set(m[1], [...(ports.get(m[1]) ?? []), f]);
  }
  assert.equal(ports.size, 1, `metrics ports in the docs: ${JSON.stringify([...ports])}`);
  const r = spawnSync(process.execPath, [CLI, 'daemon', '--metrics', 'localhost'], { encoding: 'utf8', env: { ...process.env, UL2TP_RUNDIR: '/nonexistent-ul2tp-docs-test' } });
  assert.notEqual(r.status, 0, 'no default port');
});
