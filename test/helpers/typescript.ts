/**
 * Imported for its effect by the tests that write TypeScript for mist to
 * load at run time (a plugin, a mist.config.ts): the tests themselves run
 * compiled (test/helpers/paths.ts), so this loads tsx into the test's
 * process as `node --import tsx` does for a user who runs mist under tsx
 * (docs/plugins.md). Its tsconfig gives every file the legacy decorators of
 * @command.
 */
import { inRepo } from './paths.ts';

process.env.TSX_TSCONFIG_PATH = inRepo('tsconfig.runtime.json');
// By its resolved URL: the package has no type declarations for its loader.
await import(import.meta.resolve('tsx'));
