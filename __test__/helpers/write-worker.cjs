// worker_threads body of the cache tests: opens the file store at workerData.path, runs the
// listed calls ([method, ...args]) one after another, closes it and reports.
'use strict'
const { parentPort, workerData } = require('node:worker_threads')
const { StateManager } = require(workerData.root)

async function main() {
  const state = await StateManager.open({ adapter: 'file', path: workerData.path })
  for (const [method, ...args] of workerData.writes) await state[method](...args)
  await state.close()
  parentPort.postMessage({})
}

main().catch((err) => parentPort.postMessage({ error: err.stack }))
