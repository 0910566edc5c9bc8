#!/usr/bin/env node
// `npm run bench`: every suite, each printing one table of stepstate beside its reference
// stores measured in the same run. `npm run bench -- memory` runs only the named suites.
// BENCH_ROUNDS (default 5), BENCH_OPS (default 50000), BENCH_SECONDS (default 2, the cap of one
// durable-store measurement), BENCH_ITEMS (default 1000000, the recovery test) and
// BENCH_REDIS_OPS (default 20000, each Redis figure; the suite starts its own redis-server) scale it.
'use strict'
const { ROUNDS } = require('./harness')

const suites = {
  memory: () => require('./memory').run(),
  file: () => require('./file').run(), // includes the recovery figures
  recovery: () => require('./file').recovery(),
  events: () => require('./events').run(),
  redis: () => require('./redis').run(), // starts a private redis-server
  python: () => runPython(), // the Python binding (benchmark/python/bench.py) in the repo's .venv
}

/** `npm run bench -- python`: runs benchmark/python/bench.py with the repository's .venv. */
function runPython() {
  const path = require('path')
  const root = path.join(__dirname, '..')
  const python = path.join(root, '.venv', 'bin', 'python')
  if (!require('fs').existsSync(python)) {
    throw new Error(`the python suite needs the virtualenv ${python} with the binding installed (python -m venv .venv; .venv/bin/pip install maturin redis; maturin develop --release -m crates/stepstate-py/Cargo.toml)`)
  }
  const { status, signal } = require('child_process').spawnSync(python, [path.join(__dirname, 'python', 'bench.py')], { cwd: root, stdio: 'inherit' })
  if (status !== 0) throw new Error(`benchmark/python/bench.py failed (${signal || `exit ${status}`})`)
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
