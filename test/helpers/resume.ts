/**
 * Test helpers for resume: what a client received up to the resume reply,
 * and publishing numbered messages.
 */
import type { Message } from '../../core/protocol.ts';

/** A client of any transport, as the resume tests drive it. */
export interface Client {
  send(message: unknown): void;
  next(): Promise<Message>;
  sync(): Promise<void>;
}

/** Sends `resume` from `id` and reads what comes up to its reply: the messages replayed (and any live ones before the reply), and the reply. */
export async function resume(client: Client, id: string): Promise<{ messages: Message[]; reply: Message }> {
  client.send({ command: 'resume', data: id });
  return readUntilReply(client, 'resume');
}

/** The messages `client` receives until the reply to `command`, and that reply. */
export async function readUntilReply(client: Pick<Client, 'next'>, command: string): Promise<{ messages: Message[]; reply: Message }> {
  const messages: Message[] = [];
  for (;;) {
    const message = await client.next();
    if (message.command === command) return { messages, reply: message };
    messages.push(message);
  }
}

/** Publishes data `from`…`to - 1` on `tags`, in one go, and waits until the server has handled them. */
export async function publishRange(client: Client, tags: string[], from: number, to: number): Promise<void> {
  for (let n = from; n < to; n++) client.send({ command: 'publish', tags, data: n });
  await client.sync();
}

/** `from`…`to - 1`. */
export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

export const SUCCESS: Message = { command: 'resume', tags: [], data: 'success' };
export const GAP: Message = { command: 'resume', tags: [], data: 'gap' };
