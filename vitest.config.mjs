import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const root = fileURLToPath(new URL('.', import.meta.url))
const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

export default defineConfig({
  test: {
    include: ['__test__/**/*.spec.ts'],
    // The native addon is loaded once per worker; two workers match the two cores of the CI box.
    pool: 'forks',
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 30000,
    allowOnly: false,
    // Load the package's entry points with Node itself, as an installed `stepstate` is loaded
    // by a user's test runner: transformed by vite, the CommonJS `module.exports` of index.js
    // is not seen by index.mjs, so the ESM entry could not be tested faithfully.
    server: { deps: { external: [new RegExp(`^${escapeRegExp(root)}index\\.m?js$`)] } },
    // The Redis conformance pass runs on a private redis-server started for it.
    globalSetup: process.env.STEPSTATE_TEST_ADAPTER === 'redis' ? ['./__test__/helpers/redis-server.mjs'] : [],
    // Under CI a skipped or todo test fails the run (see the reporter's header).
    reporters: ['default', './__test__/helpers/no-skips-reporter.mjs'],
  },
})
