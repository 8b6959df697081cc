/**
 * The dispatcher's typed results, from a real server's dispatcher: the
 * reply, or a refusal of each kind with the text line transports send.
 */
import test, { type ExecutionContext } from 'ava';
import type { Identity } from '../core/auth.ts';
import { STORE_UNAVAILABLE } from '../core/auth.ts';
import { command } from '../core/commands.ts';
import { CommandError, ErrorCodes, MistError } from '../core/errors.ts';
import type { Frame, Message } from '../core/protocol.ts';
import type { CommandResult } from '../core/result.ts';
import type { Session } from '../core/session.ts';
import { definePlugin } from '../host/api.ts';
import type { MistServer } from '../host/server.ts';
import { LineClient, recordingSink, startTestServer, lineWithoutId } from './helpers/server.ts';

const ADMIN = 'admin-secret';

class TestCommands {
  @command('capped')
  capped(): Message {
    throw new CommandError('too many subscriptions (limit 1)', 'limit');
  }

  @command('crash')
  crash(): Message {
    throw new Error('a bug in the handler');
  }

  @command('later')
  async later(): Promise<Message> {
    await new Promise((resolve) => setTimeout(resolve, 10));
    return { command: 'later', data: 'done' };
  }
}

/** A server, with an authenticator and a token `user-token` for tag `a` when `auth`, and the test commands. */
async function dispatchServer(t: ExecutionContext, auth = false): Promise<MistServer> {
  const plugin = definePlugin({ name: 'test', register: (api) => api.commands.add(new TestCommands()) });
  const { server } = await startTestServer(t, auth ? { authenticator: 'memory://', token: ADMIN } : {}, [plugin]);
  if (auth) await server.auth.register('user-token', ['a']);
  return server;
}

/** A session on `server` whose output is recorded: the dispatcher must write none of its results there. */
function openSession(t: ExecutionContext, server: MistServer, identity?: Identity): { session: Session; written: Frame[] } {
  const { sink, written } = recordingSink();
  const session = server.connections.open(sink, { transport: 'test', remote: 'here' }, identity);
  t.teardown(() => session.closed());
  return { session, written };
}

/** Dispatches `message` (an object to encode, or raw text) for `session`. */
async function dispatch(server: MistServer, session: Session, message: unknown): Promise<CommandResult> {
  return server.dispatcher.dispatch(session, typeof message === 'string' ? message : JSON.stringify(message));
}

test('a command with a reply: ok, the reply, synchronously when its handler is, and nothing written to the session', async (t) => {
  const server = await dispatchServer(t);
  const { session, written } = openSession(t, server);
  const result = server.dispatcher.dispatch(session, '{"command":"ping"}');
  t.false(result instanceof Promise);
  t.deepEqual(result, { ok: true, reply: { command: 'ping', tags: [], data: 'pong' } });
  t.deepEqual(written, []);
  t.is(server.dispatcher.errors, 0);
});

test('a fire-and-forget publish: ok, without a reply', async (t) => {
  const server = await dispatchServer(t);
  const { session } = openSession(t, server);
  t.deepEqual(await dispatch(server, session, { command: 'publish', tags: ['a'], data: 1 }), { ok: true, reply: undefined });
});

test('an asynchronous command: a promise of the result', async (t) => {
  const server = await dispatchServer(t);
  const { session, written } = openSession(t, server);
  const pending = server.dispatcher.dispatch(session, '{"command":"later"}');
  t.true(pending instanceof Promise);
  t.deepEqual(await pending, { ok: true, reply: { command: 'later', data: 'done' } });
  t.deepEqual(written, []);
});

test('invalid: bad JSON, field types, tag limits, empty tags, missing tags, non-string data', async (t) => {
  const server = await dispatchServer(t);
  const { session } = openSession(t, server);
  const cases: Array<[unknown, string, string | RegExp]> = [
    ['not json', 'error', /^invalid JSON: /],
    ['[1]', 'error', 'a message must be a JSON object'],
    [{ tags: ['a'] }, 'error', 'missing "command"'],
    [{ command: 'subscribe', tags: 'a' }, 'subscribe', '"tags" must be an array of strings'],
    [{ command: 'subscribe', tags: ['a', ''] }, 'subscribe', 'a tag must not be empty'],
    [{ command: 'subscribe', tags: Array.from({ length: 300 }, (_, i) => `t${i}`) }, 'subscribe', /^too many tags: 300/],
    [{ command: 'subscribe', tags: [] }, 'subscribe', '"subscribe" needs at least one tag'],
    [{ command: 'ping', data: 5 }, 'ping', '"data" must be a string'],
  ];
  for (const [message, named, error] of cases) {
    const result = await dispatch(server, session, message);
    const what = JSON.stringify(message);
    if (result.ok) return t.fail(`${what} was accepted`);
    t.is(result.kind, 'invalid', what);
    t.is(result.command, named, what);
    if (typeof error === 'string') t.is(result.error, error, what);
    else t.regex(result.error, error, what);
  }
  t.is(server.dispatcher.errors, cases.length);
});

test('unauthenticated: a connection that has not authenticated, and a wrong token', async (t) => {
  const server = await dispatchServer(t, true);
  const { session } = openSession(t, server);
  t.deepEqual(await dispatch(server, session, { command: 'subscribe', tags: ['a'] }), {
    ok: false,
    kind: 'unauthenticated',
    command: 'subscribe',
    error: 'not authenticated: send auth first',
  });
  t.deepEqual(await dispatch(server, session, { command: 'auth', data: 'guess' }), { ok: false, kind: 'unauthenticated', command: 'auth', error: 'invalid token' });
  await dispatch(server, session, { command: 'auth', data: 'guess' });
  // The third wrong token is refused like the others, and the connection is to be closed once that is sent.
  t.deepEqual(await dispatch(server, session, { command: 'auth', data: 'guess' }), {
    ok: false,
    kind: 'unauthenticated',
    command: 'auth',
    error: 'invalid token; too many failed attempts, closing the connection',
    close: true,
  });
});

test('forbidden: tags the token does not permit, an admin command without the admin token or without an authenticator', async (t) => {
  const server = await dispatchServer(t, true);
  const { session } = openSession(t, server, { role: 'user', token: 'user-token' });
  t.deepEqual(await dispatch(server, session, { command: 'publish', tags: ['a', 'b'] }), {
    ok: false,
    kind: 'forbidden',
    command: 'publish',
    error: 'not permitted to use tags: b',
  });
  t.deepEqual(await dispatch(server, session, { command: 'who' }), { ok: false, kind: 'forbidden', command: 'who', error: '"who" needs the admin token' });

  const open = await dispatchServer(t);
  const { session: anyone } = openSession(t, open);
  const result = await dispatch(open, anyone, { command: 'who' });
  t.like(result, { ok: false, kind: 'forbidden', command: 'who' });
});

test('unknown: a command nobody declared', async (t) => {
  const server = await dispatchServer(t);
  const { session } = openSession(t, server);
  t.deepEqual(await dispatch(server, session, { command: 'nope' }), { ok: false, kind: 'unknown', command: 'nope', error: 'Unknown Command' });
});

test('limit: a handler refusing with a CommandError of kind limit', async (t) => {
  const server = await dispatchServer(t);
  const { session } = openSession(t, server);
  t.deepEqual(await dispatch(server, session, { command: 'capped' }), {
    ok: false,
    kind: 'limit',
    command: 'capped',
    error: 'too many subscriptions (limit 1)',
  });
});

test('unavailable: the token store is down', async (t) => {
  const server = await dispatchServer(t, true);
  server.auth.store!.tagsFor = async () => {
    throw new Error('connection lost');
  };
  const { session } = openSession(t, server);
  t.deepEqual(await dispatch(server, session, { command: 'auth', data: 'user-token' }), {
    ok: false,
    kind: 'unavailable',
    command: 'auth',
    error: STORE_UNAVAILABLE,
  });
});

test('failed: a fault in a handler is "internal error", and the session is still usable', async (t) => {
  const server = await dispatchServer(t);
  const { session } = openSession(t, server);
  t.deepEqual(await dispatch(server, session, { command: 'crash' }), { ok: false, kind: 'failed', command: 'crash', error: 'internal error' });
  t.like(await dispatch(server, session, { command: 'ping' }), { ok: true });
});

test('execute runs a request built by a transport: its fields checked as a frame\'s, data forwarded from its text as written', async (t) => {
  const server = await dispatchServer(t);
  const { session } = openSession(t, server);
  const subscriber = await LineClient.connect(t, server.url('tcp'));
  await subscriber.request({ command: 'subscribe', tags: ['a'] });

  t.like(await server.dispatcher.execute(session, { command: 'subscribe', tags: ['a', ''] }), { ok: false, kind: 'invalid', error: 'a tag must not be empty' });
  t.like(await server.dispatcher.execute(session, { command: 'publish', tags: 'a' }), { ok: false, kind: 'invalid', error: '"tags" must be an array of strings' });

  const text = '{"tags":["a"], "data": {"big": 12345678901234567890}}';
  const exact = await server.dispatcher.execute(session, { command: 'publish', tags: ['a'], data: JSON.parse(text).data, text });
  t.deepEqual(exact, { ok: true, reply: undefined });
  t.is(lineWithoutId(await subscriber.nextLine()), '{"command":"publish","tags":["a"],"data":{"big":12345678901234567890}}');
  // Without the text, data is encoded anew.
  await server.dispatcher.execute(session, { command: 'publish', tags: ['a'], data: { n: 1 } });
  t.is(lineWithoutId(await subscriber.nextLine()), '{"command":"publish","tags":["a"],"data":{"n":1}}');
});

test('over a line transport, each kind of refusal is the error reply it always was', async (t) => {
  const server = await dispatchServer(t);
  const client = await LineClient.connect(t, server.url('tcp'));
  t.deepEqual(await client.request({ command: 'nope' }), { command: 'nope', error: 'Unknown Command' });
  t.deepEqual(await client.request({ command: 'capped' }), { command: 'capped', error: 'too many subscriptions (limit 1)' });
  t.deepEqual(await client.request({ command: 'crash' }), { command: 'crash', error: 'internal error' });
  t.deepEqual(await client.request({ command: 'subscribe' }), { command: 'subscribe', error: '"subscribe" needs at least one tag' });
  t.deepEqual(await client.request({ command: 'later' }), { command: 'later', data: 'done' });
});

test('@command compiled as a standard decorator (experimentalDecorators off) fails at once, naming the setting', (t) => {
  // What a TC39 decorator receives: the method and a context object, not a prototype and a name.
  const standard = command('yo') as unknown as (method: unknown, context: { kind: string; name: string }) => void;
  const error = t.throws(() => standard(() => {}, { kind: 'method', name: 'yo' }), { instanceOf: MistError });
  t.is(error?.code, ErrorCodes.PLUGIN);
  t.regex(error?.message ?? '', /@command\('yo'\) was compiled as a standard decorator.*"experimentalDecorators": true/);
});
