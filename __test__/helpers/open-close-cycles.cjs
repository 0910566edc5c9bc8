// Child process of the resource tests: opens and closes a file store `cycles` times, each time
// with `sync: 'always'`, a change listener and a watch() iterator, and prints one JSON line with
// the open descriptors and memory (after garbage collection) before and after. Run with
// --expose-gc.
'use strict'
const { readdirSync } = require('node:fs')
const { StateManager } = require(process.argv[2])

const [dir, cycles] = [process.argv[3], Number(process.argv[4])]

function measure() {
  global.gc()
  global.gc()
  return { fds: readdirSync('/proc/self/fd').length, rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed }
}

async function cycle(n) {
  const state = await StateManager.open({ adapter: 'file', path: dir, sync: 'always' })
  const seen = []
  state.onChange((event) => seen.push(event))
  const watch = state.watch({ group: 'g' })
  // About 100 KB of values per cycle: a store that kept its data after close would show.
  for (let i = 0; i < 5; i++) await state.set('g', `k${i}`, { n, pad: 'x'.repeat(20_000) })
  await watch.next()
  await state.close()
}

async function main() {
  await cycle(0) // the first open loads the addon and warms up
  await new Promise((resolve) => setTimeout(resolve, 50))
  const before = measure()
  for (let n = 1; n <= cycles; n++) await cycle(n)
  await new Promise((resolve) => setTimeout(resolve, 300)) // stopped threads exit
  const after = measure()
  process.stdout.write(`${JSON.stringify({ before, after })}\n`)
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`)
  process.exit(1)
})
