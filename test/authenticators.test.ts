/** The authenticator contract (test/authenticators.contract.ts), run against every built-in store. */
import { join } from 'node:path';
import { createLogger } from '../core/logger.ts';
import { JwtAuthenticator } from '../plugins/authenticators/jwt.ts';
import { MemoryAuthenticator } from '../plugins/authenticators/memory.authenticator.ts';
import { PostgresAuthenticator } from '../plugins/authenticators/postgres.authenticator.ts';
import { ScribbleAuthenticator } from '../plugins/authenticators/scribble.authenticator.ts';
import { authenticatorContract, mintedTokensContract, persistenceContract, type MintingStore, type StoreFactory } from './authenticators.contract.ts';
import { tempFolder } from './helpers/files.ts';
import { hs256, SECRET_ENV } from './helpers/jwt.ts';
import { postgresSchema, postgresTestsRun } from './helpers/postgres.ts';

const memory: StoreFactory = async () => ({ store: new MemoryAuthenticator() });

const scribble: StoreFactory = async (t) => {
  const url = new URL(`scribble://?db=${encodeURIComponent(join(await tempFolder(t), 'db'))}`);
  const store = await ScribbleAuthenticator.open(url);
  return {
    store,
    reopen: async () => {
      await store.close();
      return ScribbleAuthenticator.open(url);
    },
  };
};

const postgres: StoreFactory = async (t) => {
  const url = new URL(postgresSchema(t).uri);
  const store = await PostgresAuthenticator.open(url);
  return {
    store,
    reopen: async () => {
      await store.close();
      return PostgresAuthenticator.open(url);
    },
  };
};

/** Signed tokens hold no store: only the part of the contract that needs none applies. */
const jwt = async (): Promise<MintingStore> => ({
  store: await JwtAuthenticator.open(new URL(`jwt://?secret-env=${SECRET_ENV}`), createLogger('FATAL')),
  mint: (tags) => hs256({ tags }),
});

const withPostgres = await postgresTestsRun();

authenticatorContract('memory://', memory);
authenticatorContract('scribble://', scribble);
persistenceContract('scribble://', scribble);
authenticatorContract('postgres://', postgres, { skip: !withPostgres });
persistenceContract('postgres://', postgres, { skip: !withPostgres });
mintedTokensContract('jwt://', jwt);
