/**
 * Where things are while the tests run. `npm test` compiles the tests and
 * the sources they import to build/ (tsconfig.test.json), and ava runs them
 * from there: a test's import.meta.url is in build/test/, not test/. Files of
 * the checkout (docs/, package.json, the TypeScript sources themselves) are
 * found from REPO; the modules the tests import, with source().
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The compiled tree, build/: this file is build/test/helpers/paths.js. */
const BUILD = new URL('../../', import.meta.url);

/** The checkout's folder, with no trailing slash. */
export const REPO = fileURLToPath(new URL('..', BUILD)).replace(/\/$/, '');

/** A file or folder of the checkout, by its path there. */
export function inRepo(path: string): string {
  return join(REPO, path);
}

/**
 * The URL of a source module (`host/index.ts`) as this test run loads it,
 * compiled: code a test writes or runs imports mist by it, and gets the very
 * module instances the test has (the same MistError, the same decorators).
 */
export function source(path: string): string {
  return new URL(path.replace(/\.ts$/, '.js'), BUILD).href;
}
