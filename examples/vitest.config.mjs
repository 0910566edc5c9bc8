// vitest settings of the example tests (examples/*.vitest.test.mjs), kept apart from the
// project's own specs. `npm test` runs them twice: `--pool=threads` and `--pool=forks`.
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  cacheDir: fileURLToPath(new URL('../node_modules/.vite/examples', import.meta.url)),
  test: {
    root: fileURLToPath(new URL('.', import.meta.url)),
    include: ['*.vitest.test.mjs'],
  },
})
