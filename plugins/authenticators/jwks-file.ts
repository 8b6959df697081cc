/** A JWKS file for the jwt:// authenticator, followed as it changes. */
import { unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, type JWTVerifyGetKey } from 'jose';
import type { Logger } from '../../host/index.ts';

/** How often the file is checked for changes. */
const POLL_MS = 1000;

/**
 * A JWKS file, checked for changes every {@link POLL_MS} and re-read
 * then. A rewrite that cannot be read or is not a key set (half written,
 * deleted) is logged and the last good set kept. Polling the path, unlike
 * watching the file, also sees a new file renamed over the old one.
 */
export class KeySetFile {
  private reloading: Promise<void> = Promise.resolve();
  private readonly changed = (): void => {
    // One re-read at a time, so an older read cannot land after a newer one.
    this.reloading = this.reloading.then(() => this.reload());
  };

  private constructor(
    private readonly file: string,
    private keys: JWTVerifyGetKey,
    private readonly logger: Logger,
  ) {
    watchFile(file, { interval: POLL_MS, persistent: false }, this.changed);
  }

  static async open(file: string, logger: Logger): Promise<KeySetFile> {
    return new KeySetFile(file, await readKeySet(file), logger);
  }

  /** Resolves the key for a token from the current set. */
  readonly getKey: JWTVerifyGetKey = (header, token) => this.keys(header, token);

  close(): void {
    unwatchFile(this.file, this.changed);
  }

  private async reload(): Promise<void> {
    try {
      this.keys = await readKeySet(this.file);
      this.logger.info({ file: this.file }, 'JWKS file reloaded');
    } catch (err) {
      this.logger.warn({ file: this.file, error: (err as Error).message }, 'JWKS file not reloaded: keeping the last good key set');
    }
  }
}

async function readKeySet(file: string): Promise<JWTVerifyGetKey> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read JWKS file ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return createLocalJWKSet(JSON.parse(text));
  } catch (err) {
    const why = err instanceof SyntaxError ? 'it is not valid JSON' : (err as Error).message;
    throw new Error(`JWKS file ${file} is not a key set: ${why}`, { cause: err });
  }
}
