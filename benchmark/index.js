#!/usr/bin/env node
// `npm run bench`: every suite, each printing one table of stepstate beside its reference
// stores measured in the same run. `npm run bench -- memory` runs only the named suites.
// BENCH_ROUNDS (default 5), BENCH_OPS (default 50000), BENCH_SECONDS (default 2, the cap of one
// durable-store measurement), BENCH_ITEMS (default 1000000, the recovery test) and
// BENCH_REDIS_OPS (default 5000, each Redis figure; the suite starts its own redis-server) scale it.
'use strict'
const { ROUNDS } = require('./harness')

const suites = {
  memory: () => require('./memory').run(),
  file: () => require('./file').run(), // includes the recovery figures
  recovery: () => require('./file').recovery(),
  events: () => require('./events').run(),
  redis: () => require('./redis').run(), // starts a private redis-server
}

async function main() {
  const chosen = process.argv.slice(2).filter((a) => !a.startsWith('-'))
  const names = chosen.length ? chosen : ['memory', 'file', 'events', 'redis']
  console.log(`stepstate benchmark — node ${process.version}, ${ROUNDS} rounds; figures are medians of rounds, ratios medians of per-round ratios (> 1: stepstate faster)`)
  for (const name of names) {
    if (!suites[name]) throw new Error(`unknown suite ${name}; known: ${Object.keys(suites).join(', ')}`)
    await suites[name]()
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
