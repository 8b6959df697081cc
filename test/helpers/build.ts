/**
 * Tests of what users run — the compiled package, the browser bundle, a
 * packed tarball — need dist/ built from the sources as they are now; a
 * stale build would test old code. `npm test` builds first; a test file run
 * on its own after an edit fails here, saying so.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO as ROOT } from './paths.ts';

const BUNDLE = 'dist/browser/mist-client.js';

/** Throws unless every source has its compiled file no older than itself, and the browser bundle is no older than the client's sources. */
export function assertBuilt(): void {
  for (const folder of ['core', 'host', 'plugins', 'cli', 'client']) {
    for (const entry of readdirSync(join(ROOT, folder), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
      const source = relative(ROOT, join(entry.parentPath, entry.name));
      const built: string[] = [];
      if (!source.startsWith('client/browser/')) built.push(join('dist', source.replace(/\.ts$/, '.js')));
      if (source.startsWith('client/')) built.push(BUNDLE);
      for (const file of built) {
        if (modified(file) < modified(source)) throw new Error(`${file} is older than ${source}, or missing: run \`npm run build\` (npm test does)`);
      }
    }
  }
}

function modified(path: string): number {
  return statSync(join(ROOT, path), { throwIfNoEntry: false })?.mtimeMs ?? -Infinity;
}
