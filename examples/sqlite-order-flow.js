// The order flow of order-flow.js on a store of your own: the same steps, unchanged, over the
// SQLite adapter of sqlite-adapter.js. Each run adds its orders to the database, so a second
// run reports both runs' orders; a session written with a TTL survives the restart and
// expires on time.
//
//   node examples/sqlite-order-flow.js [database file]   (default: examples/.stepstate-sqlite.db)

'use strict'

const path = require('node:path')
const { StateManager } = require('..')
const { SqliteAdapter } = require('./sqlite-adapter.js')
const { apiCreateOrder, queueMarkPaid, cronReport } = require('./order-flow.js')

const logger = (step) => ({
  info: (message) => console.log(`[${step}] ${message}`),
  warn: (message) => console.log(`[${step}] warning: ${message}`),
})

async function main() {
  const file = process.argv[2] || path.join(__dirname, '.stepstate-sqlite.db')
  const state = await StateManager.open({ adapter: new SqliteAdapter(file) })
  try {
    const session = await state.get('sessions', 'last-run')
    console.log(session === null ? '-- no session from an earlier run (or it expired)' : `-- a session from an earlier run: ${session.at}`)
    await state.set('sessions', 'last-run', { at: new Date().toISOString() }, { ttl: 60 })

    state.onChange((e) => console.log(`   event: ${e.event_type} ${e.group_id}/${e.item_id}`), { group: 'orders' })
    const created = []
    for (const body of [{ item: 'book' }, { item: 'lamp', quantity: 2 }, { item: 'mug' }, { quantity: 3 }, { item: 'desk' }, { item: 'pen', quantity: 10 }]) {
      const res = await apiCreateOrder({ body }, { state, logger: logger('ApiCreateOrder') })
      if (res.status === 201) created.push(res.body.id)
    }
    const messages = [created[0], created[2], created[0], created[4]].map((orderId) => ({ orderId }))
    await Promise.all(messages.map((input) => queueMarkPaid(input, { state, logger: logger('QueueMarkPaid') })))
    await cronReport({ state, logger: logger('CronReport') })
    // Events arrive on a later turn of the event loop; `close()` ends every subscription, so
    // let the listener hear of the last changes first.
    await new Promise((resolve) => setImmediate(resolve))
  } finally {
    await state.close()
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
