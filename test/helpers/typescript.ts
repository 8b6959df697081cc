/**
 * Imported for its effect by the tests that write TypeScript for mist to
 * load at run time (a plugin, a mist.config.ts): the tests themselves run
 * compiled (test/helpers/paths.ts), so this registers tsx in the test's
 * thread, as `node --import tsx` does for a user who runs mist under tsx
 * (docs/plugins.md): for ES modules and, in a folder without "type":
 * "module", CommonJS. Its tsconfig gives every file the legacy decorators
 * of @command.
 */
import { register as registerCommonJs } from 'tsx/cjs/api';
import { register } from 'tsx/esm/api';
import { inRepo } from './paths.ts';

process.env.TSX_TSCONFIG_PATH = inRepo('tsconfig.runtime.json');
registerCommonJs();
register();
