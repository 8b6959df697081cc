/**
 * A plain Node relay, for the fan-out bench's baseline: what "read a line,
 * write it to every subscriber as it comes" costs in Node, without mist's
 * parsing, matching or batching. It speaks just enough of mist's line
 * protocol for bench/loadgen.mjs: a line naming "subscribe" subscribes the
 * connection to everything (and is answered), any other line is relayed.
 *
 *   node bench/relay.mjs PORT
 */
import { createServer } from 'node:net';

const subscribers = new Set();
const server = createServer((socket) => {
  socket.setNoDelay(true);
  let carry = '';
  socket.on('data', (chunk) => {
    const lines = (carry + chunk.toString()).split('\n');
    carry = lines.pop();
    for (const line of lines) {
      if (line.includes('"subscribe"')) {
        subscribers.add(socket);
        socket.write('{"command":"subscribe","tags":[],"data":"success"}\n');
      } else {
        for (const subscriber of subscribers) subscriber.write(line + '\n');
      }
    }
  });
  socket.on('error', () => {});
  socket.on('close', () => subscribers.delete(socket));
});
server.listen(Number(process.argv[2]), '127.0.0.1');
