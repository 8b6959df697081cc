/**
 * What running one request came to. Line transports send it as the wire
 * protocol has it (the reply, or `{"command":…,"error":…}`); transports
 * that answer in their own terms (an HTTP status) read the refusal's kind,
 * so none of them has to work out from the error text why it was refused.
 */
import type { Message } from './protocol.ts';

/**
 * Why a request was not carried out:
 * - `invalid`: the client's mistake (bad JSON, field types, tags, data…);
 * - `unauthenticated`: no identity, or a wrong token;
 * - `forbidden`: the identity may not do this (tags its token does not permit, an admin command);
 * - `unknown`: no such command;
 * - `limit`: over a limit of the server's (message size, subscriptions…);
 * - `throttled`: too many requests of this kind from the client's address at once: try again shortly;
 * - `unavailable`: a service it needs (the token store) is down: try again later;
 * - `failed`: a fault in the server (a handler bug), not the client's doing.
 */
export type RefusalKind = 'invalid' | 'unauthenticated' | 'forbidden' | 'unknown' | 'limit' | 'throttled' | 'unavailable' | 'failed';

/** A refusal: its kind, and the words the client sees. */
export interface Refusal {
  readonly kind: RefusalKind;
  readonly error: string;
}

export type CommandResult = Success | Refused;

/** The command ran; its reply, or none (a fire-and-forget publish). */
export interface Success {
  readonly ok: true;
  readonly reply: Message | undefined;
}

/** The request was refused, or its command failed. `command` is what an error reply names. */
export interface Refused extends Refusal {
  readonly ok: false;
  readonly command: string;
  /** The connection is to be closed once the refusal is sent. */
  readonly close?: true;
}

/** The message a line transport sends for `result`: the reply, the error reply, or nothing. */
export function replyOf(result: CommandResult): Message | undefined {
  return result.ok ? result.reply : { command: result.command, error: result.error };
}
