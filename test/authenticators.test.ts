/** The authenticator contract (test/authenticators.contract.ts), run against every built-in store. */
import { join } from 'node:path';
import { MemoryAuthenticator } from '../plugins/authenticators/memory.authenticator.ts';
import { PostgresAuthenticator } from '../plugins/authenticators/postgres.authenticator.ts';
import { ScribbleAuthenticator } from '../plugins/authenticators/scribble.authenticator.ts';
import { authenticatorContract, persistenceContract, type StoreFactory } from './authenticators.contract.ts';
import { tempFolder } from './helpers/files.ts';
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

const withPostgres = await postgresTestsRun();

authenticatorContract('memory://', memory);
authenticatorContract('scribble://', scribble);
persistenceContract('scribble://', scribble);
authenticatorContract('postgres://', postgres, { skip: !withPostgres });
persistenceContract('postgres://', postgres, { skip: !withPostgres });
