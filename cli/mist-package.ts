/**
 * mist's own package: its folder and package.json. Found by self-reference
 * (`mist/package.json`), which gives the same answer from the sources in a
 * checkout and from the compiled files in dist/ or node_modules/mist.
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface MistPackage {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}

const PACKAGE_JSON = fileURLToPath(import.meta.resolve('mist/package.json'));

/** The folder of the mist package: a checkout, or node_modules/mist where it is installed. */
export const MIST_ROOT = dirname(PACKAGE_JSON);

export function mistPackage(): MistPackage {
  return JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as MistPackage;
}
