/**
 * ava, as `npm test` runs it: over the tests compiled to build/ (tsconfig.test.json),
 * plain JavaScript, so the test files share one process as worker threads.
 */
export default {
  files: ['build/test/**/*.test.js'],
  workerThreads: true,
  concurrency: 4,
  timeout: '60s',
  // The end-to-end files first: each is a long chain of npm and tsc runs that mostly waits
  // on child processes, so it overlaps the rest of the suite rather than ending the run alone.
  sortTestFiles: (a, b) => Number(b.endsWith('.e2e.test.js')) - Number(a.endsWith('.e2e.test.js')) || a.localeCompare(b),
};
