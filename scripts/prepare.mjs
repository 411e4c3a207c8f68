#!/usr/bin/env node
// npm's `prepare` step: builds dist/ with the TypeScript compiler.
//
// It runs after `npm ci` / `npm install` in a checkout, before `npm pack` /
// `npm publish`, and on `npm install -g .`. That last one links this folder
// into the global prefix *without* installing its dependencies, so on a fresh
// clone neither the compiler (a devDependency) nor the runtime dependencies
// are here: install them first (`npm ci`, from package-lock.json), then build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

// The outer `npm install -g` passes its own settings down (global, prefix):
// the inner npm must install into this folder, not the global prefix.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_config_(global|location|prefix)$/i.test(k)));

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env });
  if (r.status !== 0) {
    console.error(`ul2tp prepare: ${cmd} ${args.join(' ')} failed${r.error ? `: ${r.error.message}` : ''}`);
    process.exit(r.status ?? 1);
  }
}

if (!existsSync(tsc)) {
  console.error('ul2tp prepare: no node_modules here (fresh clone?): running npm ci to get the compiler and the runtime dependencies');
  run('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund']);
}
run(process.execPath, [tsc, '-p', '.']);
