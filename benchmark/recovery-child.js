'use strict'
// Child process of the recovery benchmark, so that each measurement starts from a fresh
// process: `write DIR N` stores N ~200-byte items (100 groups) and closes; `open DIR N` times
// StateManager.open, checks the item count and reports resident memory. Prints one JSON line.

const { StateManager } = require('..')

const [mode, dir, countText] = process.argv.slice(2)
const count = Number(countText)

function item(i) {
  return { id: `order-${i}`, customer: `cust-${i % 9973}`, status: i % 3 ? 'paid' : 'pending', total: (i % 1000) / 10, items: [{ sku: `sku-${i % 97}`, qty: 1 + (i % 5) }], note: 'x'.repeat(60) }
}

async function write() {
  const state = await StateManager.open({ adapter: 'file', path: dir })
  const start = process.hrtime.bigint()
  let next = 0
  const worker = async () => {
    while (next < count) {
      const i = next++
      await state.set(`g${i % 100}`, `k${i}`, item(i))
    }
  }
  await Promise.all(Array.from({ length: 64 }, worker))
  await state.close()
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  return { seconds, valueBytes: JSON.stringify(item(count - 1)).length }
}

async function open() {
  const baselineRssMb = process.memoryUsage().rss / 1e6
  const start = process.hrtime.bigint()
  const state = await StateManager.open({ adapter: 'file', path: dir })
  const openMs = Number(process.hrtime.bigint() - start) / 1e6
  const groups = await state.listGroups()
  if (groups.length !== 100) throw new Error(`expected 100 groups, found ${groups.length}`)
  const sample = await state.get('g7', 'k7')
  if (sample === null || sample.id !== 'order-7') throw new Error('item k7 missing after reopen')
  const rssMb = process.memoryUsage().rss / 1e6
  await state.close()
  return { openMs, rssMb, baselineRssMb }
}

;(mode === 'write' ? write() : open()).then(
  (result) => console.log(JSON.stringify(result)),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
