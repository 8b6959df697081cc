#!/usr/bin/env node
// The `mist` executable (package.json `bin`, compiled to dist/cli/bin.js).
import { main } from './main.ts';

process.exitCode = await main(process.argv.slice(2));
