/**
 * Why a URI the WHATWG parser refuses, or would read wrongly, is wrong:
 * `new URL()` says only "Invalid URL", whether the port is out of range or
 * the `//` is missing.
 */

/** `scheme://`, maybe `user:password@` (up to the last `@`), the host, maybe `:port`. */
const SHAPE = /^([a-z][a-z0-9+.-]*):\/\/(?:[^/?#]*@)?(\[[^\]]*\]|[^/?#:]*)(?::([^/?#]*))?/i;
const MAX_PORT = 65_535;

/** What is wrong with `uri` as `scheme://host:port…`, or undefined when nothing is. */
export function uriProblem(uri: string): string | undefined {
  const match = SHAPE.exec(uri);
  if (!match) return 'expected scheme://host:port';
  const port = match[3];
  if (port !== undefined && port !== '') {
    if (!/^\d+$/.test(port)) return `port "${port}" is not a number`;
    if (Number(port) > MAX_PORT) return `port ${port} is out of range (0 to ${MAX_PORT})`;
  }
  return URL.canParse(uri) ? undefined : 'not a valid URI';
}

/** `uri` fit for a message: its password, if any, replaced by `***`. Works on a URI no parser takes. */
export function withoutPassword(uri: string): string {
  return uri.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/?#]*):[^/?#]*@/i, '$1:***@');
}
