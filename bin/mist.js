#!/usr/bin/env node
// The `mist` executable. mist is TypeScript run by tsx, registered here with
// tsconfig.runtime.json (legacy decorators for mist and for its plugins)
// wherever the command is started from.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.runtime.json', import.meta.url)) });
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
