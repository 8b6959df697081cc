/**
 * Test helpers for the WebSocket and HTTP listeners: a WebSocket client, an
 * SSE client and a one-shot HTTP request, over real sockets. Everything a
 * test opens is closed by `t.teardown`.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { ExecutionContext } from 'ava';
import { WebSocket, type ClientOptions } from 'ws';
import type { Message } from '../../core/protocol.ts';
import { selfSigned } from '../../plugins/listeners/tls-credentials.ts';
import { tempFolder } from './files.ts';
import { Wakeup, WAIT_MS } from './wakeup.ts';

/** The http(s):// base of a ws(s):// or http(s):// listener URL. */
export function httpBase(url: string): string {
  return url.replace(/^ws/, 'http');
}

/** The WebSocket endpoint of a ws(s):// or http(s):// listener URL. */
export function websocketUrl(url: string, query = ''): string {
  return `${url.replace(/^http/, 'ws')}/subscribe/websocket${query}`;
}

/** A WebSocket client that reads one JSON message per text frame. */
export class WsClient {
  private readonly messages: Array<{ text: string; binary: boolean }> = [];
  private readonly wakeup = new Wakeup();
  closed = false;
  closeCode: number | undefined;

  private constructor(
    readonly ws: WebSocket,
    private readonly socket: Duplex,
  ) {
    ws.on('message', (data: Buffer, binary: boolean) => {
      this.messages.push({ text: data.toString(), binary });
      this.wakeup.wake();
    });
    ws.on('error', () => {});
    ws.on('close', (code) => {
      this.closed = true;
      this.closeCode = code;
      this.wakeup.wake();
    });
  }

  /** Connects to a ws(s):// URL of the endpoint; rejects with the HTTP status if the upgrade is refused. */
  static async connect(t: ExecutionContext, url: string, options: ClientOptions = {}): Promise<WsClient> {
    const ws = new WebSocket(url, { rejectUnauthorized: false, ...options });
    t.teardown(() => ws.terminate());
    let socket!: Duplex;
    ws.once('upgrade', (res: IncomingMessage) => (socket = res.socket));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('unexpected-response', (_req, res: IncomingMessage) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
    return new WsClient(ws, socket);
  }

  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  /** Sends each of `messages` in its own frame, all in one write: what a client sending them in one go does. */
  sendTogether(messages: unknown[]): void {
    this.socket.cork();
    for (const message of messages) this.send(message);
    this.socket.uncork();
  }

  /** Sends raw text (or bytes, as a binary frame). */
  write(data: string | Buffer): void {
    this.ws.send(data);
  }

  async request(message: unknown): Promise<Message> {
    this.send(message);
    return this.next();
  }

  async next(timeoutMs = WAIT_MS): Promise<Message> {
    return JSON.parse((await this.nextFrame(timeoutMs)).text) as Message;
  }

  async nextFrame(timeoutMs = WAIT_MS): Promise<{ text: string; binary: boolean }> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length === 0) {
      if (this.closed) throw new Error('connection closed');
      if (Date.now() >= deadline) throw new Error(`no message within ${timeoutMs} ms`);
      await this.wakeup.wait(deadline);
    }
    return this.messages.shift()!;
  }

  get pending(): number {
    return this.messages.length;
  }

  async waitClosed(timeoutMs = WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() >= deadline) throw new Error(`connection still open after ${timeoutMs} ms`);
      await this.wakeup.wait(deadline);
    }
  }

  /** Sends ping and waits for its reply: everything sent before has been handled. */
  async sync(): Promise<void> {
    const reply = await this.request({ command: 'ping' });
    if (reply.command !== 'ping') throw new Error(`expected the ping reply, got ${JSON.stringify(reply)}`);
  }

  close(): void {
    this.ws.terminate();
  }
}

/** One WebSocket frame as it came on the wire, and its fields. */
export interface RawFrame {
  /** The whole frame: header and payload. */
  bytes: Buffer;
  fin: boolean;
  /** The three reserved bits (RSV1 marks a compressed message). */
  rsv: number;
  opcode: number;
  masked: boolean;
  /** Header length: 2 (7-bit length), 4 (16-bit) or 10 (64-bit), plus 4 when masked. */
  headerLength: number;
  payload: Buffer;
}

/**
 * A WebSocket client that keeps the server's frames as raw bytes, to check
 * them byte for byte (the `ws` client hands over messages only). It speaks
 * just enough of RFC 6455: the upgrade, masked text frames out, whole
 * frames in.
 */
export class RawWebSocket {
  private buffer: Buffer;
  private readonly wakeup = new Wakeup();
  closed = false;

  private constructor(readonly socket: Duplex, head: Buffer) {
    this.buffer = head;
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.wakeup.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wakeup.wake();
    });
  }

  /** Upgrades `GET` of a ws:// URL of the endpoint; `headers` are added to the request. */
  static async connect(t: ExecutionContext, url: string, headers: Record<string, string> = {}): Promise<RawWebSocket> {
    const target = new URL(url.replace(/^ws/, 'http'));
    const req = httpRequest(target, {
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64'), ...headers },
    });
    const client = await new Promise<RawWebSocket>((resolve, reject) => {
      req.once('upgrade', (_res, socket, head) => resolve(new RawWebSocket(socket, head)));
      req.once('response', (res) => reject(new Error(`HTTP ${res.statusCode}`)));
      req.once('error', reject);
      req.end();
    });
    t.teardown(() => client.socket.destroy());
    return client;
  }

  /** Sends a masked text frame (a zero mask, which leaves the payload as it is). */
  send(message: unknown): void {
    const payload = Buffer.from(JSON.stringify(message));
    const length = payload.length < 126 ? Buffer.from([0x80 | payload.length]) : Buffer.from([0x80 | 126, payload.length >> 8, payload.length & 0xff]);
    this.socket.write(Buffer.concat([Buffer.from([0x81]), length, Buffer.alloc(4), payload]));
  }

  async nextFrame(timeoutMs = WAIT_MS): Promise<RawFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = this.parse();
      if (frame) return frame;
      if (this.closed) throw new Error('connection closed');
      if (Date.now() >= deadline) throw new Error(`no frame within ${timeoutMs} ms`);
      await this.wakeup.wait(deadline);
    }
  }

  /** Takes the first whole frame off the buffer, if there is one. */
  private parse(): RawFrame | undefined {
    const b = this.buffer;
    if (b.length < 2) return undefined;
    const masked = (b[1]! & 0x80) !== 0;
    let length = b[1]! & 0x7f;
    let headerLength = 2;
    if (length === 126) {
      if (b.length < 4) return undefined;
      length = b.readUInt16BE(2);
      headerLength = 4;
    } else if (length === 127) {
      if (b.length < 10) return undefined;
      length = Number(b.readBigUInt64BE(2));
      headerLength = 10;
    }
    if (masked) headerLength += 4;
    if (b.length < headerLength + length) return undefined;
    const bytes = b.subarray(0, headerLength + length);
    this.buffer = b.subarray(headerLength + length);
    return { bytes, fin: (b[0]! & 0x80) !== 0, rsv: (b[0]! & 0x70) >> 4, opcode: b[0]! & 0x0f, masked, headerLength, payload: bytes.subarray(headerLength) };
  }
}

export interface HttpReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One HTTP request; resolves with the whole answer. */
export function fetchText(
  url: string,
  options: { method?: string; headers?: Record<string, string | number>; body?: string | Buffer } = {},
): Promise<HttpReply> {
  const request = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers, rejectUnauthorized: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** POST /publish with a JSON (or raw) body. */
export function postPublish(base: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpReply> {
  const text = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  return fetchText(`${httpBase(base)}/publish`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: text });
}

/** An event of an SSE stream; comments are kept apart. */
export interface SseEvent {
  event: string;
  data: string;
  /** Its `id:` line, if it had one. */
  id?: string;
}

/** A Server-Sent Events client over a raw HTTP request, reading events and comments as they come. */
export class SseClient {
  private buffer = '';
  private readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  private readonly wakeup = new Wakeup();
  closed = false;

  private constructor(readonly response: IncomingMessage) {
    response.setEncoding('utf8');
    response.on('data', (text: string) => {
      this.buffer += text;
      let at: number;
      while ((at = this.buffer.indexOf('\n\n')) >= 0) {
        const block = this.buffer.slice(0, at);
        this.buffer = this.buffer.slice(at + 2);
        const event: SseEvent = { event: 'message', data: '' };
        let isEvent = false;
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
          else if (line.startsWith('event: ')) ((event.event = line.slice(7)), (isEvent = true));
          else if (line.startsWith('data: ')) ((event.data += line.slice(6)), (isEvent = true));
          else if (line.startsWith('id: ')) event.id = line.slice(4);
        }
        if (isEvent) this.events.push(event);
      }
      this.wakeup.wake();
    });
    response.on('error', () => {});
    response.on('close', () => {
      this.closed = true;
      this.wakeup.wake();
    });
  }

  /**
   * Opens `GET /subscribe/events` + `query` on an http(s):// base URL.
   * Resolves once the stream is open (200 and the first comment); rejects
   * with the status and body otherwise.
   */
  static async connect(t: ExecutionContext, base: string, query: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const url = `${httpBase(base)}/subscribe/events${query}`;
    const request = url.startsWith('https:') ? httpsRequest : httpRequest;
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(url, { headers: { accept: 'text/event-stream', ...headers }, rejectUnauthorized: false }, resolve);
      req.on('error', reject);
      t.teardown(() => req.destroy());
      req.end();
    });
    if (response.statusCode !== 200) {
      const chunks: Buffer[] = [];
      for await (const chunk of response) chunks.push(chunk as Buffer);
      throw Object.assign(new Error(`HTTP ${response.statusCode}`), { status: response.statusCode, body: Buffer.concat(chunks).toString() });
    }
    const client = new SseClient(response);
    await client.waitFor(() => client.comments.length > 0, 'the opening comment');
    return client;
  }

  /**
   * The next event's message, parsed. Throws unless its `id:` line (what
   * an EventSource resumes from) is the message's id.
   */
  async next(timeoutMs = WAIT_MS): Promise<Message & { event: string }> {
    await this.waitFor(() => this.events.length > 0, 'an event', timeoutMs);
    const { event, data, id } = this.events.shift()!;
    const message = JSON.parse(data) as Message;
    if (id !== message.id) throw new Error(`event id ${id} is not the message's id ${message.id}: ${data}`);
    return { event, ...message };
  }

  get pending(): number {
    return this.events.length;
  }

  async waitFor(condition: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (this.closed) throw new Error(`stream closed before ${what}`);
      if (Date.now() >= deadline) throw new Error(`no ${what} within ${timeoutMs} ms`);
      await this.wakeup.wait(deadline);
    }
  }

  async waitClosed(timeoutMs = WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() >= deadline) throw new Error(`stream still open after ${timeoutMs} ms`);
      await this.wakeup.wait(deadline);
    }
  }

  close(): void {
    this.response.destroy();
  }
}

/** A self-signed certificate and key made now, written to a temporary folder: `{ cert, key }` paths. */
export async function certificateFiles(t: ExecutionContext): Promise<{ cert: string; key: string; pem: string }> {
  const dir = await tempFolder(t);
  const { cert, key } = await selfSigned('localhost');
  const paths = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
  await writeFile(paths.cert, cert);
  await writeFile(paths.key, key);
  return { ...paths, pem: cert.toString() };
}

/**
 * Publishes 8 KiB messages tagged `tags` in batches, each batch waited for,
 * until `until()` holds (a slow consumer was dropped or disconnected);
 * throws if it never does within `maxMessages`.
 */
export async function flood(
  publisher: { send(message: unknown): void; sync(): Promise<void> },
  tags: string[],
  until: () => boolean,
  maxMessages = 20_000,
): Promise<void> {
  const data = 'x'.repeat(8 * 1024);
  for (let sent = 0; sent < maxMessages; ) {
    for (let i = 0; i < 64; i++, sent++) publisher.send({ command: 'publish', tags, data });
    await publisher.sync();
    if (until()) return;
  }
  throw new Error(`still not the case after ${maxMessages} messages`);
}
