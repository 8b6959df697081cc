// The load generator: subscribers and publishers for mist (JSON lines) and
// Redis (RESP), run in worker threads so that the bench's own main thread
// stays idle. Plain JavaScript, parsed by nothing but Node, and parsing only
// what it must: each payload starts `#<publisher>,<seq>,<sent µs>,`, which a
// subscriber finds by scanning for `#` whatever the protocol around it.
import { connect } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';

const HASH = 0x23;
const COMMA = 0x2c;
const NEWLINE = 0x0a;
/** Latency histogram: 10 µs buckets up to 1 s, the last one "1 s or more". */
const BUCKET_US = 10;
const BUCKETS = 100_001;

function nowMicros() {
  const [s, ns] = process.hrtime();
  return s * 1e6 + Math.floor(ns / 1e3);
}

const role = workerData.role;
if (role === 'subscribers') runSubscribers(workerData);
else if (role === 'publishers') runPublishers(workerData);
else throw new Error(`unknown role ${role}`);

// ---------------------------------------------------------------------------

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
    const conn = { socket, last: new Float64Array(publishers).fill(-1), got: 0, carry: undefined, newlines: 0, expect: 0, ready: false };
    conns.push(conn);
    socket.on('error', (err) => parentPort.postMessage({ type: 'error', message: `subscriber ${index}: ${err.message}` }));
    socket.on('connect', () => {
      let text = '';
      if (protocol === 'mist') {
        const subs = [tags];
        for (let j = 0; j < nearMiss; j++) subs.push([...tags.slice(0, -1), `nm-${index}-${j}`]);
        for (const sub of subs) text += JSON.stringify({ command: 'subscribe', tags: sub }) + '\n';
        conn.expect = subs.length; // one reply line each
      } else {
        text = `SUBSCRIBE ${channel}\r\n`;
        conn.expect = 6; // *3 $9 subscribe $n channel :1
      }
      socket.write(text);
    });
    socket.on('data', (chunk) => {
      if (!conn.ready) {
        for (let at = chunk.indexOf(NEWLINE); at >= 0; at = chunk.indexOf(NEWLINE, at + 1)) conn.newlines++;
        if (conn.newlines >= conn.expect) {
          conn.ready = true;
          if (++ready === count) parentPort.postMessage({ type: 'ready' });
        }
        return;
      }
      scan(conn, chunk);
    });
  }

  function scan(conn, chunk) {
    if (conn.carry) {
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

function runPublishers({ protocol, port, count, first, tags, channel, payloadBytes }) {
  const sockets = [];
  const seqs = new Array(count).fill(0);
  let connected = 0;
  let skipped = 0;
  const tagsJson = JSON.stringify(tags);

  for (let i = 0; i < count; i++) {
    const socket = connect({ port, host: '127.0.0.1', noDelay: true });
    sockets.push(socket);
    socket.on('error', (err) => parentPort.postMessage({ type: 'error', message: `publisher ${first + i}: ${err.message}` }));
    socket.on('data', () => {}); // Redis answers each PUBLISH with a count; mist says nothing.
    socket.on('connect', () => {
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
    return `*3\r\n$7\r\nPUBLISH\r\n$${channel.length}\r\n${channel}\r\n$${data.length}\r\n${data}\r\n`;
  }

  // Paced like an independent load generator: each message is written on its
  // own when it is due, not batched per timer tick. The thread sleeps between
  // messages with Atomics.wait (sub-millisecond, unlike setTimeout) and gives
  // its event loop a turn every few milliseconds to read what the server
  // sends back. When it falls behind (very high rates), each publisher writes
  // what is due in one write.
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  let timer;
  parentPort.on('message', (msg) => {
    if (msg.type === 'start') {
      const { rate, durationMs } = msg;
      const total = rate * count;
      const start = nowMicros();
      const end = start + durationMs * 1000;
      const slice = () => {
        const sliceEnd = Math.min(nowMicros() + 5000, end);
        let now;
        for (;;) {
          now = nowMicros();
          const elapsed = Math.min(now, end) - start;
          const due = Math.floor((elapsed * rate) / 1e6);
          for (let p = 0; p < count; p++) {
            const socket = sockets[p];
            let n = due - seqs[p];
            if (n <= 0) continue;
            // A server that cannot keep up shows as a publisher held back by TCP.
            if (socket.writableLength > 4 * 1024 * 1024) {
              skipped += n;
              seqs[p] = due;
              continue;
            }
            let text = '';
            for (; n > 0; n--) text += encode(first + p, ++seqs[p]);
            socket.write(text);
          }
          if (now >= sliceEnd) break;
          // Sleep until the next message of any publisher is due (publishers are staggered by the same clock).
          const next = start + ((Math.floor(((now - start) * total) / 1e6) + 1) * 1e6) / total;
          const waitMs = (next - nowMicros()) / 1000;
          if (waitMs > 0.01) Atomics.wait(sleeper, 0, 0, waitMs);
        }
        if (now >= end) parentPort.postMessage({ type: 'done', sent: seqs.reduce((a, b) => a + b, 0), skipped });
        else timer = setImmediate(slice);
      };
      slice();
    } else if (msg.type === 'mark') {
      parentPort.postMessage({ type: 'mark', sent: seqs.reduce((a, b) => a + b, 0) - skipped });
    } else if (msg.type === 'close') {
      clearImmediate(timer);
      for (const s of sockets) s.destroy();
      parentPort.postMessage({ type: 'closed' });
      parentPort.close();
    }
  });
}
