/**
 * `GET /mist-client.js`: the browser build of the client library
 * (dist/browser/mist-client.js, made by `npm run build`), and its source
 * map, for a page to `import { connect } from '/mist-client.js'`. Read once,
 * at the first request. Any page may load it (CORS `*`, which module scripts
 * of another origin need): it is code, and the WebSocket it opens checks
 * the page's origin itself.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { sendError } from './web.ts';

export const BROWSER_CLIENT_PATH = '/mist-client.js';
export const BROWSER_CLIENT_MAP_PATH = '/mist-client.js.map';

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** Each file's contents, read by the first request for it (a failed read is tried again by the next). */
const assets = new Map<string, Promise<Asset>>();

function load(file: string, type: string): Promise<Asset> {
  let asset = assets.get(file);
  if (!asset) {
    asset = readFile(file).then((body) => ({ body, type, etag: `"${createHash('sha256').update(body).digest('base64url')}"` }));
    assets.set(file, asset);
    asset.catch(() => assets.delete(file));
  }
  return asset;
}

/** Answers GET and HEAD of BROWSER_CLIENT_PATH and BROWSER_CLIENT_MAP_PATH. */
export async function serveBrowserClient(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  // The package's own export: the same file from the sources in a checkout and from an installed package.
  const bundle = fileURLToPath(import.meta.resolve('mist/client/browser'));
  let asset: Asset;
  try {
    asset = path === BROWSER_CLIENT_MAP_PATH ? await load(`${bundle}.map`, 'application/json') : await load(bundle, 'text/javascript; charset=utf-8');
  } catch {
    return sendError(res, 404, "the browser client is not built: run `npm run build` in mist's folder");
  }
  const headers = { 'content-type': asset.type, etag: asset.etag, 'cache-control': 'no-cache', 'access-control-allow-origin': '*' };
  if (req.headers['if-none-match'] === asset.etag) {
    res.writeHead(304, headers);
    return void res.end();
  }
  res.writeHead(200, { ...headers, 'content-length': asset.body.length });
  res.end(asset.body);
}
