/**
 * Certificate and key for the TLS listeners (tls, wss, https):
 * from the listener URI's query (`?cert=/path/cert.pem&key=/path/key.pem`),
 * else from the config file's `tls` key, else a self-signed certificate made
 * at start-up, fit for development only, whose SHA-256 fingerprint is logged
 * so that a client can pin it.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Logger } from '../../host/index.ts';

export interface TlsCredentials {
  cert: string | Buffer;
  key: string | Buffer;
}

/** Certificate and key paths, as the config file's `tls` key holds them. */
export interface TlsPaths {
  cert: string;
  key: string;
}

export async function tlsCredentials(url: URL, configured: TlsPaths | undefined, logger: Logger): Promise<TlsCredentials> {
  const cert = url.searchParams.get('cert');
  const key = url.searchParams.get('key');
  if ((cert === null) !== (key === null)) throw new Error('give both ?cert= and ?key=, or neither');
  const paths = cert !== null && key !== null ? { cert, key } : configured;
  if (paths) {
    const [certPem, keyPem] = await Promise.all([readFile(paths.cert), readFile(paths.key)]);
    return { cert: certPem, key: keyPem };
  }
  const made = await selfSigned(url.hostname.replace(/^\[(.*)\]$/, '$1'));
  logger.warn(
    { url: url.href.replace(/\?.*$/, ''), fingerprint256: fingerprint(made.cert) },
    'no certificate given: serving a self-signed one (development only)',
  );
  return made;
}

/** A self-signed certificate for `host` (plus localhost and the loopback addresses), valid one year. */
export async function selfSigned(host = 'localhost'): Promise<TlsCredentials> {
  const names = new Set(['localhost', hostname(), host].filter(Boolean));
  const ips = new Set(['127.0.0.1', '::1']);
  const altNames = [
    ...[...names].filter((name) => !isIp(name)).map((value) => ({ type: 2 as const, value })),
    ...[...ips, ...[...names].filter(isIp)].map((ip) => ({ type: 7 as const, ip })),
  ];
  // Loaded only when needed: it is large, and most servers never make a certificate.
  const { generate } = await import('selfsigned');
  const pems = await generate([{ name: 'commonName', value: host || 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

/** The certificate's SHA-256 fingerprint, `AB:CD:…`. */
export function fingerprint(cert: string | Buffer): string {
  return new X509Certificate(cert).fingerprint256;
}

function isIp(name: string): boolean {
  return /^[\d.]+$/.test(name) || name.includes(':');
}
