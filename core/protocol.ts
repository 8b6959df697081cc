/**
 * The wire protocol: one JSON object per message. This module
 * parses and validates what clients send and encodes what the server sends;
 * it knows nothing of transports (framing lives in the listeners).
 */
import { isUtf8 } from 'node:buffer';
import { CommandError } from './errors.ts';
import { memberText } from './json-text.ts';
import type { Limits } from './limits.ts';

/** A message as it travels on the wire, in either direction. */
export interface Message {
  command: string;
  tags?: readonly string[];
  /** A string for every command but `publish`, which forwards any JSON value verbatim. */
  data?: unknown;
  /** Only in server replies, only when a command failed. */
  error?: string;
  /** Only on delivered messages, when history is on: what a client resumes from. */
  id?: string;
}

/** A client request that passed the generic checks every command shares. */
export interface Request {
  command: string;
  /** Empty when the client sent no tags. */
  tags: string[];
  /** What the client sent, parsed; `undefined` when absent. */
  data: unknown;
  /** The frame's JSON text, for reading `data` exactly as sent (see {@link dataJson}). */
  text: string;
}

/**
 * A request as a transport with a framing of its own holds it (an HTTP
 * body, SSE's query): its fields not checked yet.
 */
export interface RequestFields {
  command: string;
  tags?: unknown;
  data?: unknown;
  /**
   * The JSON text of an object whose member `data` is `data` as the client
   * wrote it, so that it is forwarded exactly (see {@link dataJson});
   * without it, `data` is encoded anew.
   */
  text?: string;
}

/**
 * Replies to input that is not a JSON object with a string `command` use
 * this as their command, since there is no command to name.
 */
export const INVALID_MESSAGE_COMMAND = 'error';

/**
 * Parses one frame of client input — text, or bytes that must be UTF-8 —
 * into a {@link Request}, enforcing the field types and the tag limits.
 * Throws a `CommandError` whose `command` is the one its reply names.
 */
export function parseRequest(frame: string | Buffer, limits: Limits): Request {
  const message = parseMessage(frame);
  if ('error' in message) throw new CommandError(message.error, 'invalid', { command: INVALID_MESSAGE_COMMAND });
  const { command, tags, data } = message.fields;
  if (command === undefined) {
    throw new CommandError('missing "command"', 'invalid', { command: INVALID_MESSAGE_COMMAND });
  }
  if (typeof command !== 'string') {
    throw new CommandError('"command" must be a string', 'invalid', { command: INVALID_MESSAGE_COMMAND });
  }
  return { command, tags: checkTags(command, tags, limits), data, text: message.text };
}

/**
 * The JSON object one frame of client input holds — text, or bytes that
 * must be UTF-8 — with its text; `{ error }` when it holds none.
 */
export function parseMessage(frame: string | Buffer): { fields: Record<string, unknown>; text: string } | { error: string } {
  // Decoding invalid UTF-8 would silently turn bytes into U+FFFD: refuse it instead.
  if (typeof frame !== 'string' && !isUtf8(frame)) return { error: 'invalid UTF-8' };
  const text = frame.toString();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { error: `invalid JSON: ${(err as Error).message}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { error: 'a message must be a JSON object' };
  return { fields: value as Record<string, unknown>, text };
}

/** Checks a request's fields as {@link parseRequest} does a frame's: the tags' type and limits. Throws a `CommandError` as parseRequest does. */
export function checkRequest(fields: RequestFields, limits: Limits): Request {
  const { command, data } = fields;
  const text = fields.text ?? (data === undefined ? '{}' : JSON.stringify({ data }));
  return { command, tags: checkTags(command, fields.tags, limits), data, text };
}

function checkTags(command: string, tags: unknown, limits: Limits): string[] {
  if (tags === undefined || tags === null) return [];
  if (!Array.isArray(tags)) {
    throw new CommandError('"tags" must be an array of strings', 'invalid', { command });
  }
  if (tags.length > limits.maxTags) {
    throw new CommandError(`too many tags: ${tags.length} (limit ${limits.maxTags})`, 'invalid', { command });
  }
  for (const tag of tags) {
    if (typeof tag !== 'string') {
      throw new CommandError('"tags" must be an array of strings', 'invalid', { command });
    }
    if (tag.length === 0) {
      throw new CommandError('a tag must not be empty', 'invalid', { command });
    }
    // A UTF-16 length within the limit cannot be more than 3 bytes per unit.
    if (tag.length * 3 > limits.maxTagBytes && Buffer.byteLength(tag) > limits.maxTagBytes) {
      throw new CommandError(`tag too long: ${Buffer.byteLength(tag)} bytes (limit ${limits.maxTagBytes})`, 'invalid', { command });
    }
  }
  return tags as string[];
}

/**
 * The JSON text of a request's `data` as the client wrote it (without
 * insignificant whitespace), or undefined when it sent none. Forwarding this
 * text keeps numbers beyond double precision and duplicate keys intact.
 */
export function dataJson(request: Request): string | undefined {
  const { data } = request;
  if (data === undefined) return undefined;
  // Strings, booleans and null survive a parse/stringify round trip; numbers and containers may not.
  if (typeof data === 'number' || (typeof data === 'object' && data !== null)) return memberText(request.text, 'data');
  return JSON.stringify(data);
}

/** How a transport puts a frame on the wire (a WebSocket frame, an SSE event): see {@link Frame.framed}. */
export type Framing = (frame: Frame) => Buffer;

/**
 * An outgoing message encoded once, whatever the number of receivers:
 * every connection writes these same bytes (docs/architecture.md, "Hot path").
 */
export class Frame {
  private lineBytes: Buffer | undefined;
  private size: number | undefined;
  /** The framing asked for first, and its bytes: one field test per delivery, where a map lookup would cost more. */
  private framing: Framing | undefined;
  private framingBytes: Buffer | undefined;
  /** Other framings' bytes (one message to subscribers over several transports). */
  private otherFramings: Map<Framing, Buffer> | undefined;

  constructor(
    /** The JSON text, as sent in a WebSocket text frame. */
    readonly json: string,
    /** A published message's id, when history is on (core/history.ts); SSE sends it as the event's `id:`. */
    readonly id?: string,
  ) {}

  static of(message: Message): Frame {
    return new Frame(JSON.stringify(message));
  }

  /**
   * A published message as subscribers receive it; `data` is JSON text (see
   * {@link dataJson}). `id` is its history id, which needs no escaping
   * (core/history.ts makes it of letters, digits and `-`).
   */
  static publish(tags: readonly string[], data: string | undefined, id?: string): Frame {
    const json = `{"command":"publish","tags":${JSON.stringify(tags)}${data === undefined ? '' : `,"data":${data}`}${id === undefined ? '' : `,"id":"${id}"`}}`;
    return new Frame(json, id);
  }

  /** Bytes of the JSON text in UTF-8, computed once. */
  get byteLength(): number {
    return (this.size ??= Buffer.byteLength(this.json));
  }

  /** The JSON text plus `\n`, as sent on newline-delimited transports. */
  get line(): Buffer {
    return (this.lineBytes ??= Buffer.from(this.json + '\n'));
  }

  /** This frame as `framing` puts it on the wire, built once per framing however many connections send it. */
  framed(framing: Framing): Buffer {
    if (this.framing === framing) return this.framingBytes!;
    if (this.framing === undefined) {
      this.framing = framing;
      return (this.framingBytes = framing(this));
    }
    this.otherFramings ??= new Map();
    let bytes = this.otherFramings.get(framing);
    if (!bytes) this.otherFramings.set(framing, (bytes = framing(this)));
    return bytes;
  }
}
