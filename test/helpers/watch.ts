/**
 * A test's view of each connection's server side, through the sink the
 * listener hands to the core: how many bytes it held at most, and its
 * largest frame.
 */
import type { Frame } from '../../core/protocol.ts';
import type { Session, Sink } from '../../core/session.ts';
import type { startTestServer } from './server.ts';

type Server = Awaited<ReturnType<typeof startTestServer>>['server'];

/** What the server side of one connection did, seen through its sink. */
export interface Watched {
  session: Session;
  sink: Sink;
  /** The most bytes ever queued on the sink, sampled right after every write. */
  maxBuffered: number;
  /** The largest frame written, in bytes on the wire. */
  maxFrame: number;
}

/**
 * Wraps every sink the server hands to new sessions, so a test can see each
 * connection's server-side outbound buffer. It goes through the public
 * `Connections.open` the listeners call; nothing private is touched.
 * Returns the watched connections by the client's local port.
 */
export function watchConnections(server: Server): Map<number, Watched> {
  const watched = new Map<number, Watched>();
  const connections = server.connections;
  const open = connections.open.bind(connections);
  connections.open = (sink, info, identity) => {
    let entry: Watched | undefined;
    const wrapped: Sink = {
      write(frame: Frame) {
        sink.write(frame);
        if (entry) {
          entry.maxBuffered = Math.max(entry.maxBuffered, sink.bufferedBytes);
          entry.maxFrame = Math.max(entry.maxFrame, frame.line.length);
        }
      },
      get bufferedBytes() {
        return sink.bufferedBytes;
      },
      end: () => sink.end(),
      destroy: () => sink.destroy(),
      pause: () => sink.pause(),
      resume: () => sink.resume(),
      whenDrained: (callback) => sink.whenDrained(callback),
    };
    const session = open(wrapped, info, identity);
    entry = { session, sink, maxBuffered: 0, maxFrame: 0 };
    watched.set(Number(info.remote.slice(info.remote.lastIndexOf(':') + 1)), entry);
    return session;
  };
  return watched;
}
