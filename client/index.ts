/**
 * The mist client library.
 *
 * @example
 * import { connect } from 'mist/client';
 * const client = await connect('tcp://127.0.0.1:1445');
 * await client.subscribe(['deploy']);
 * for await (const message of client) console.log(message.tags, message.data);
 */
import { MistClient, type ConnectOptions } from './client.ts';

/**
 * Connects to a mist server at `url` — `tcp://host:port`, `ws://host:port`
 * (path `/subscribe/websocket` unless the URL gives one), `tls://` or
 * `wss://` — and authenticates with `options.token` if given. Rejects when
 * the connection or the auth fails.
 */
export function connect(url: string | URL, options: ConnectOptions = {}): Promise<MistClient> {
  return new MistClient(url, options).open();
}

export { MistClient, dataText, type ClientState, type ConnectOptions, type Delivery, type MistClientEvents, type WhoReply } from './client.ts';
export type { ReconnectOptions } from './backoff.ts';
export { ClientErrorCodes, MistClientError, MistReplyError, type ClientErrorCode } from './errors.ts';
export { WEBSOCKET_PATH } from '../core/wire.ts';
