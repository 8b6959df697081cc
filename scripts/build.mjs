/**
 * What `npm run build` does after tsc has compiled to dist/:
 *
 * - makes the executable, dist/cli/bin.js, executable (as npm makes it
 *   where the package is installed, so a tarball packed here is the same);
 * - builds the browser client, dist/browser/mist-client.js: client/index.ts
 *   bundled into one ES module for browsers. Two modules are put in place of
 *   their Node.js versions: client/browser/transports.ts (the browser's
 *   WebSocket) for client/transports.ts, and client/browser/events.ts for
 *   node:events. Any other Node module fails the build (platform: browser).
 *   The http listener serves it at /mist-client.js (docs/client.md).
 */
import { build } from 'esbuild';
import { chmod } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const root = (path) => fileURLToPath(new URL(`../${path}`, import.meta.url));

await chmod(root('dist/cli/bin.js'), 0o755);

const inBrowser = {
  name: 'mist-browser',
  setup(esbuild) {
    esbuild.onResolve({ filter: /^node:events$/ }, () => ({ path: root('client/browser/events.ts') }));
    esbuild.onResolve({ filter: /^\.\/transports\.ts$/ }, () => ({ path: root('client/browser/transports.ts') }));
  },
};

await build({
  entryPoints: [root('client/index.ts')],
  outfile: root('dist/browser/mist-client.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  sourcemap: true,
  plugins: [inBrowser],
  logLevel: 'warning',
});
