/** The cluster over a real Redis: the shared scenarios of test/helpers/cluster-scenarios.ts. */
import { clusterTests } from './helpers/cluster-scenarios.ts';

await clusterTests('redis');
