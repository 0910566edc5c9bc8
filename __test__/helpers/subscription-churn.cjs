// Subscribes and unsubscribes many times, then prints how much the heap and the resident set
// grew, after forced garbage collections: `node --expose-gc subscription-churn.cjs
// <onChange|watch> <count> <memory|file> <directory>`. Run by hostile-input.spec.ts.
'use strict'
const { StateManager } = require('../../index.js')

const [mode, countText, adapter, directory] = process.argv.slice(2)
const count = Number(countText)

async function churn(state, times) {
  for (let i = 0; i < times; i++) {
    if (mode === 'watch') {
      const iterator = state.watch({ group: 'g' })
      await iterator.return()
    } else {
      state.onChange(() => {}, { group: 'g' })()
    }
  }
}

/** Lets finalizers and closed native callbacks run, collecting between turns. */
async function settle() {
  for (let i = 0; i < 5; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    global.gc()
  }
}

async function main() {
  const state = adapter === 'file' ? await StateManager.open({ adapter: 'file', path: directory }) : new StateManager()
  // One round first, so that the allocator's high-water mark is reached; a leak grows again
  // with every round after it. The resident set also moves by tens of megabytes between rounds
  // with no leak at all (seen on a machine busy with other work: -9 to +60 MB, the heap flat),
  // so it is read after each of two more rounds, and the growth reported is the smaller of the
  // two rounds' own: a leak adds to both.
  await churn(state, count)
  await settle()
  const before = process.memoryUsage()
  await churn(state, count)
  await state.set('g', 'k', 1) // the store still works
  await settle()
  const middle = process.memoryUsage()
  await churn(state, count)
  await settle()
  const after = process.memoryUsage()
  const rssGrowth = Math.min(middle.rss - before.rss, after.rss - middle.rss)
  await state.close()
  process.stdout.write(JSON.stringify({ heapGrowth: middle.heapUsed - before.heapUsed, rssGrowth }))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
