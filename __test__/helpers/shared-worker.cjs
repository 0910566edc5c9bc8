// worker_threads body of the sharing test: opens the same file store as every other worker,
// counts the change events it sees, does its increments, then reports to the parent.
'use strict'
const { parentPort, workerData } = require('node:worker_threads')
const { StateManager } = require(workerData.root)

async function main() {
  // Change events never keep a thread alive by themselves (by design): hold it open until done.
  const keepAlive = setInterval(() => {}, 1000)
  const state = await StateManager.open({ adapter: 'file', path: workerData.dir })
  let seen = 0
  const everyEvent = new Promise((resolve) => {
    state.onChange(
      () => {
        seen += 1
        if (seen === workerData.expectedEvents) resolve()
      },
      { group: 'shared' },
    )
  })
  parentPort.postMessage({ type: 'subscribed' })
  await new Promise((resolve) => parentPort.once('message', resolve)) // all workers subscribed
  for (let i = 0; i < workerData.increments; i++) {
    await state.update('shared', 'counter', [{ type: 'increment', path: 'count', by: 1 }])
  }
  await everyEvent
  const final = await state.get('shared', 'counter')
  await state.close()
  clearInterval(keepAlive)
  parentPort.postMessage({ type: 'done', seen, final })
}

main().catch((err) => parentPort.postMessage({ type: 'error', message: err.stack }))
