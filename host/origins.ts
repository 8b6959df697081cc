/**
 * Which web pages may use the server from a browser: the `allowedOrigins`
 * config key, applied by the listeners a browser reaches (WebSocket
 * upgrades, event streams, HTTP publish). A browser names the page's origin
 * in the `Origin` header of every WebSocket upgrade and of every
 * cross-origin or POST request, and a page cannot change it; clients that
 * are not browsers (curl, servers) send none and are always let in. Without
 * this, any page a user opened could use a mist on their machine: subscribe,
 * or publish with a plain form.
 */
import type { Logger } from '../core/logger.ts';
import type { ConnectionInfo } from '../core/session.ts';

/** The hosts of pages served from this machine, which the default allows. */
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

export class Origins {
  /** Requests refused for their origin, for metrics. */
  refused = 0;
  private readonly any: boolean;
  /** The origins allowed, or undefined for the default: pages served from this machine. */
  private readonly listed: ReadonlySet<string> | undefined;

  /** `allowed` as config-schema.ts checked it: `["*"]`, origins, or undefined for the default. */
  constructor(
    allowed: readonly string[] | undefined,
    private readonly logger: Logger,
  ) {
    this.any = allowed?.[0] === '*';
    this.listed = allowed && new Set(allowed);
  }

  /**
   * Why a request to `path` whose Origin header is `origin` is refused, once
   * logged and counted; undefined when it is allowed.
   */
  refusal(origin: string | undefined, peer: ConnectionInfo, path: string): string | undefined {
    if (origin === undefined || this.allows(origin)) return undefined;
    this.refused++;
    this.logger.debug({ ...peer, origin, path }, 'origin not allowed');
    return `origin not allowed: ${origin}`;
  }

  /** The CORS headers of the answer to an allowed request whose Origin header is `origin`. */
  cors(origin: string | undefined): Record<string, string> {
    if (this.any) return { 'access-control-allow-origin': '*' };
    // The answer depends on the Origin header: a cache must not serve one origin's to another.
    if (origin === undefined) return { vary: 'Origin' };
    return { 'access-control-allow-origin': origin, vary: 'Origin' };
  }

  /**
   * The CORS headers of a read-only answer given to anyone (`/ping`,
   * `/metrics`): curl and Prometheus send no Origin and are answered as
   * ever; a page may read the answer only from an allowed origin, so a site
   * the operator visits cannot read a local server's metrics.
   */
  readCors(origin: string | undefined): Record<string, string> {
    return origin === undefined || this.allows(origin) ? this.cors(origin) : { vary: 'Origin' };
  }

  private allows(origin: string): boolean {
    if (this.any) return true;
    return this.listed ? this.listed.has(origin) : isLoopback(origin);
  }
}

/** Whether `origin`, as a browser sends it, is a page served from this machine: http(s) on localhost, 127.0.0.1 or [::1], any port. */
function isLoopback(origin: string): boolean {
  if (!URL.canParse(origin)) return false;
  const url = new URL(origin);
  return (url.protocol === 'http:' || url.protocol === 'https:') && LOOPBACK.has(url.hostname) && url.origin === origin;
}
