/** mist's errors are known by `instanceof` from any copy of mist, as a plugin with a copy of its own throws them. */
import test from 'ava';
import { CommandError, ErrorCodes, MistError } from '../core/errors.ts';
import { source } from './helpers/paths.ts';

/** A second copy of core/errors.ts: what a plugin's own node_modules/mist would load. */
const copy = (await import(`${source('core/errors.ts')}?copy=${Date.now()}`)) as typeof import('../core/errors.ts');

test('a CommandError or MistError of another copy of mist is an instance of this one, and the other way round', (t) => {
  t.not(copy.CommandError, CommandError, 'really a second copy');
  t.true(new copy.CommandError('refused') instanceof CommandError);
  t.true(new CommandError('refused') instanceof copy.CommandError);
  t.true(new copy.MistError(ErrorCodes.PLUGIN, 'failed') instanceof MistError);
});

test('other errors are not, nor is one kind of mist error the other', (t) => {
  t.false(new Error('plain') instanceof CommandError);
  t.false(new copy.MistError(ErrorCodes.PLUGIN, 'failed') instanceof CommandError);
  t.false(new CommandError('refused') instanceof MistError);
  for (const value of [null, undefined, 'CommandError', { message: 'x' }] as unknown[]) t.false(value instanceof CommandError);
});

test('a subclass of CommandError keeps the usual instanceof', (t) => {
  class Refusal extends CommandError {}
  t.true(new Refusal('no') instanceof CommandError);
  t.true(new Refusal('no') instanceof Refusal);
  t.false(new CommandError('no') instanceof Refusal);
});
