// The load generator: subscribers and publishers for mist (JSON lines over
// TCP, WebSocket text frames, Server-Sent Events), Redis (RESP) and NATS,
// run in worker threads so that the bench's own main thread stays idle.
// Plain JavaScript, parsed by nothing but Node, and parsing only what it
// must: each payload starts `#<publisher>,<seq>,<sent µs>,`, which a
// subscriber finds by scanning for `#` whatever the protocol around it
// (WebSocket frames are unwrapped first, since their headers are binary).
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';

const HASH = 0x23;
const COMMA = 0x2c;
const NEWLINE = 0x0a;
/** Latency histogram: 10 µs buckets up to 1 s, the last one "1 s or more". */
const BUCKET_US = 10;
const BUCKETS = 100_001;
/** A publisher's message written this much after it was due counts as late: the load generator (or the machine) held it back. */
const LATE_US = 1000;

function nowMicros() {
  const [s, ns] = process.hrtime();
  return s * 1e6 + Math.floor(ns / 1e3);
}

const role = workerData.role;
if (role === 'subscribers') runSubscribers(workerData);
else if (role === 'publishers') runPublishers(workerData);
else throw new Error(`unknown role ${role}`);

// ---------------------------------------------------------------------------

/**
 * What a subscriber of each protocol sends once connected, and when it is
 * subscribed: `ready(text)` sees everything received so far.
 */
function handshake(protocol, { tags, channel, nearMiss, index, port }) {
  switch (protocol) {
    case 'mist':
    case 'mist-ws': {
      const subs = [tags];
      for (let j = 0; j < nearMiss; j++) subs.push([...tags.slice(0, -1), `nm-${index}-${j}`]);
      const lines = subs.map((sub) => JSON.stringify({ command: 'subscribe', tags: sub }));
      const replies = (text) => text.split('"command":"subscribe"').length - 1;
      if (protocol === 'mist') return { send: lines.join('\n') + '\n', ready: (text) => replies(text) >= subs.length };
      const key = randomBytes(16).toString('base64');
      const upgrade =
        `GET /subscribe/websocket HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
      // ws answers the upgrade before it reads the frames that follow it, so both go in one write.
      return { send: Buffer.concat([Buffer.from(upgrade), ...lines.map(maskedTextFrame)]), ready: (text) => replies(text) >= subs.length };
    }
    case 'mist-sse': {
      const query = `tags=${encodeURIComponent(tags.join(','))}`;
      return { send: `GET /subscribe/events?${query} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`, ready: (text) => text.includes(': subscribed') };
    }
    case 'redis':
      // *3 $9 subscribe $n channel :1
      return { send: `SUBSCRIBE ${channel}\r\n`, ready: (text) => text.split('\n').length > 6 };
    case 'nats':
      return { send: `CONNECT {"verbose":false,"pedantic":false}\r\nSUB ${channel} 1\r\nPING\r\n`, ready: (text) => text.includes('PONG\r\n') };
    default:
      throw new Error(`unknown protocol ${protocol}`);
  }
}

/** A client's text frame (clients must mask theirs; a zero mask leaves the payload as it is). */
function maskedTextFrame(text) {
  const payload = Buffer.from(text);
  if (payload.length > 125) throw new Error('subscribe frame too long for this load generator');
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
}

function runSubscribers({ protocol, port, count, first, tags, channel, nearMiss, publishers, localAddresses }) {
  const histogram = new Uint32Array(BUCKETS);
  let received = 0;
  let reordered = 0;
  let ready = 0;
  const conns = [];

  for (let i = 0; i < count; i++) {
    const index = first + i;
    const localAddress = localAddresses ? localAddresses[index % localAddresses.length] : undefined;
    const socket = connect({ port, host: '127.0.0.1', localAddress, noDelay: true });
    const shake = handshake(protocol, { tags, channel, nearMiss, index, port });
    const conn = { socket, last: new Float64Array(publishers).fill(-1), got: 0, carry: undefined, text: '', ready: false };
    conns.push(conn);
    socket.on('error', (err) => parentPort.postMessage({ type: 'error', message: `subscriber ${index}: ${err.message}` }));
    socket.on('connect', () => socket.write(shake.send));
    socket.on('data', (chunk) => {
      if (!conn.ready) {
        conn.text += chunk.toString('latin1');
        if (shake.ready(conn.text)) {
          conn.ready = true;
          conn.text = '';
          if (++ready === count) parentPort.postMessage({ type: 'ready' });
        }
        return;
      }
      if (protocol === 'mist-ws') frames(conn, chunk);
      else scan(conn, chunk);
    });
  }

  /** Unwraps the server's WebSocket frames (never masked) and scans each text frame's payload. */
  function frames(conn, chunk) {
    if (conn.carry) {
      chunk = Buffer.concat([conn.carry, chunk]);
      conn.carry = undefined;
    }
    let at = 0;
    while (at + 2 <= chunk.length) {
      let length = chunk[at + 1] & 0x7f;
      let start = at + 2;
      if (length === 126) {
        if (start + 2 > chunk.length) break;
        length = chunk.readUInt16BE(start);
        start += 2;
      } else if (length === 127) {
        if (start + 8 > chunk.length) break;
        length = Number(chunk.readBigUInt64BE(start));
        start += 8;
      }
      if (start + length > chunk.length) break;
      if ((chunk[at] & 0x0f) === 0x1) scan(conn, chunk.subarray(start, start + length));
      at = start + length;
    }
    if (at < chunk.length) conn.carry = Buffer.from(chunk.subarray(at));
  }

  function scan(conn, chunk) {
    if (conn.carry && protocol !== 'mist-ws') {
      chunk = Buffer.concat([conn.carry, chunk]);
      conn.carry = undefined;
    }
    const now = nowMicros();
    let at = chunk.indexOf(HASH);
    while (at >= 0) {
      // #pub,seq,ts,
      let i = at + 1;
      let pub = 0;
      let seq = 0;
      let ts = 0;
      let c;
      while (i < chunk.length && (c = chunk[i]) !== COMMA) { pub = pub * 10 + (c - 48); i++; }
      i++;
      while (i < chunk.length && (c = chunk[i]) !== COMMA) { seq = seq * 10 + (c - 48); i++; }
      i++;
      while (i < chunk.length && (c = chunk[i]) !== COMMA) { ts = ts * 10 + (c - 48); i++; }
      if (i >= chunk.length) {
        if (protocol === 'mist-ws') throw new Error('a WebSocket frame with an unfinished payload head');
        conn.carry = Buffer.from(chunk.subarray(at));
        return;
      }
      if (seq <= conn.last[pub]) reordered++;
      else conn.last[pub] = seq;
      conn.got++;
      received++;
      let bucket = Math.floor((now - ts) / BUCKET_US);
      if (bucket >= BUCKETS) bucket = BUCKETS - 1;
      if (bucket < 0) bucket = 0;
      histogram[bucket]++;
      at = chunk.indexOf(HASH, i);
    }
  }

  parentPort.on('message', (msg) => {
    if (msg.type === 'reset') {
      histogram.fill(0);
      parentPort.postMessage({ type: 'reset' });
    } else if (msg.type === 'mark') {
      // How busy this thread's event loop is: a subscriber thread near 100% is the load generator's limit.
      const { idle, active } = performance.eventLoopUtilization();
      parentPort.postMessage({ type: 'mark', idle, active });
    } else if (msg.type === 'report') {
      parentPort.postMessage({
        type: 'report',
        received,
        reordered,
        perConnection: conns.map((c) => c.got),
        histogram: Array.from(histogram),
      });
    } else if (msg.type === 'close') {
      for (const c of conns) c.socket.destroy();
      parentPort.postMessage({ type: 'closed' });
      parentPort.close();
    }
  });
}

// ---------------------------------------------------------------------------

/** A seeded generator (mulberry32): every server gets the same arrivals. */
function seededRandom(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * When each message of publisher `p` is due, in µs from the start:
 * - `even`: one every 1/rate, the publishers staggered;
 * - `burst`: the same, but the publisher wakes once per 1 ms tick and writes what is due in one write;
 * - `poisson`: independent exponential gaps of mean 1/rate.
 */
function arrivals(pattern, rate, p, count, durationMs) {
  const n = Math.ceil((rate * durationMs) / 1000) + 1;
  const times = new Float64Array(n);
  const gap = 1e6 / rate;
  if (pattern === 'poisson') {
    const random = seededRandom(0x5eed + p);
    let t = 0;
    for (let i = 0; i < n; i++) times[i] = t += -Math.log(1 - random()) * gap;
  } else {
    for (let i = 0; i < n; i++) times[i] = (i + 1 + p / count) * gap;
  }
  return times;
}

function runPublishers({ protocol, port, count, first, tags, channel, payloadBytes }) {
  const sockets = [];
  const seqs = new Array(count).fill(0);
  let connected = 0;
  let skipped = 0;
  let late = 0;
  const tagsJson = JSON.stringify(tags);

  for (let i = 0; i < count; i++) {
    const socket = connect({ port, host: '127.0.0.1', noDelay: true });
    sockets.push(socket);
    socket.on('error', (err) => parentPort.postMessage({ type: 'error', message: `publisher ${first + i}: ${err.message}` }));
    socket.on('data', () => {}); // Redis answers each PUBLISH with a count; mist and NATS say nothing.
    socket.on('connect', () => {
      if (protocol === 'nats') socket.write('CONNECT {"verbose":false,"pedantic":false}\r\n');
      if (++connected === count) parentPort.postMessage({ type: 'ready' });
    });
  }

  function payload(pub, seq) {
    const head = `#${pub},${seq},${nowMicros()},`;
    return head + 'x'.repeat(Math.max(0, payloadBytes - head.length));
  }

  function encode(pub, seq) {
    const data = payload(pub, seq);
    if (protocol === 'mist') return `{"command":"publish","tags":${tagsJson},"data":"${data}"}\n`;
    if (protocol === 'nats') return `PUB ${channel} ${data.length}\r\n${data}\r\n`;
    return `*3\r\n$7\r\nPUBLISH\r\n$${channel.length}\r\n${channel}\r\n$${data.length}\r\n${data}\r\n`;
  }

  // Each message is written when it is due (`burst`: at the first 1 ms tick
  // after), with whatever else is due then in the same write. The thread
  // sleeps between writes with Atomics.wait (sub-millisecond, unlike
  // setTimeout) and gives its event loop a turn every few milliseconds to
  // read what the server sends back.
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  let timer;
  parentPort.on('message', (msg) => {
    if (msg.type === 'start') {
      const { rate, durationMs, pattern } = msg;
      const schedule = sockets.map((_, p) => arrivals(pattern, rate, p, count, durationMs));
      const start = nowMicros();
      const end = start + durationMs * 1000;
      const slice = () => {
        const sliceEnd = Math.min(nowMicros() + 5000, end);
        let now;
        for (;;) {
          now = nowMicros();
          const elapsed = Math.min(now, end) - start;
          let next = Infinity;
          for (let p = 0; p < count; p++) {
            const socket = sockets[p];
            const times = schedule[p];
            let text = '';
            for (; seqs[p] < times.length && times[seqs[p]] <= elapsed; seqs[p]++) {
              // A server that cannot keep up shows as a publisher held back by TCP.
              if (socket.writableLength > 4 * 1024 * 1024) skipped++;
              else {
                const due = pattern === 'burst' ? Math.ceil(times[seqs[p]] / 1000) * 1000 : times[seqs[p]];
                if (elapsed - due > LATE_US) late++;
                text += encode(first + p, seqs[p] + 1);
              }
            }
            if (text) socket.write(text);
            if (seqs[p] < times.length) next = Math.min(next, times[seqs[p]]);
          }
          if (now >= sliceEnd) break;
          if (pattern === 'burst') next = Math.ceil((nowMicros() - start + 1) / 1000) * 1000;
          const waitMs = (start + next - nowMicros()) / 1000;
          if (waitMs > 0.01) Atomics.wait(sleeper, 0, 0, Math.min(waitMs, (sliceEnd - nowMicros()) / 1000));
        }
        if (now >= end) parentPort.postMessage({ type: 'done', sent: seqs.reduce((a, b) => a + b, 0), skipped });
        else timer = setImmediate(slice);
      };
      slice();
    } else if (msg.type === 'mark') {
      parentPort.postMessage({ type: 'mark', sent: seqs.reduce((a, b) => a + b, 0) - skipped, late });
    } else if (msg.type === 'close') {
      clearImmediate(timer);
      for (const s of sockets) s.destroy();
      parentPort.postMessage({ type: 'closed' });
      parentPort.close();
    }
  });
}
