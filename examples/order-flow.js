// The order flow of the classic Motia docs, on stepstate.
//
// Three steps share one store through the `state` of their context object:
//   - apiCreateOrder (API step): validates a request and stores a pending order;
//   - queueMarkPaid (queue step): marks an order paid with one atomic, conditional update
//     (test status === 'pending', then set status and count the payment), so that a payment
//     message delivered twice, even concurrently, is applied once;
//   - cronReport (cron step): reads the whole 'orders' group and prints a report.
// A tiny driver at the bottom plays the requests, messages and cron tick in order.
//
// Run it with `npm run example` (or `node examples/order-flow.js`) after `npm install`. The
// steps are exported too, for their tests: order-flow.vitest.test.mjs and
// order-flow.jest.test.cjs (stepstate/testing).

'use strict'

const { StateManager } = require('..')

// ---------------------------------------------------------------------------------------------
// The store: the one place that decides where state lives. A file store in `.stepstate/` beside
// this script, so orders carry over from one run to the next (run it twice and the report
// counts both runs; delete the directory to start over). For a throwaway store in memory:
//
//   return new StateManager()
//
async function openStore() {
  return StateManager.open({ adapter: 'file', path: require('node:path').join(__dirname, '.stepstate') })
}
// ---------------------------------------------------------------------------------------------

/** Step logger: prefixes each line with the step name, like the framework's logger. */
const stepLogger = (step) => ({
  info: (message) => console.log(`[${step}] ${message}`),
  warn: (message) => console.log(`[${step}] warning: ${message}`),
})

/**
 * API step (POST /orders): validates the body and stores the order as pending.
 * The order id comes from an atomic counter, so concurrent requests never share one.
 */
const apiCreateOrder = async (req, { state, logger }) => {
  const { item, quantity = 1 } = req.body ?? {}
  if (typeof item !== 'string' || item === '' || !Number.isInteger(quantity) || quantity < 1) {
    logger.warn(`rejected order request ${JSON.stringify(req.body)}`)
    return { status: 400, body: { error: 'item (string) and quantity (positive integer) are required' } }
  }
  const { new_value: counter } = await state.update('counters', 'orders', [
    { type: 'increment', path: 'next', by: 1 },
  ])
  const id = `order-${counter.next}`
  const order = { id, item, quantity, status: 'pending', payments: 0 }
  await state.set('orders', id, order)
  logger.info(`created ${id} (${quantity} x ${item})`)
  return { status: 201, body: order }
}

/**
 * Queue step (topic 'payment.received'): marks the order paid, once. The update is atomic and
 * all-or-nothing: if the order is no longer pending, the 'test' op fails with code
 * 'test.failed' and nothing changes, so a duplicate message is harmless.
 */
const queueMarkPaid = async (input, { state, logger }) => {
  try {
    const { new_value: order } = await state.update('orders', input.orderId, [
      { type: 'test', path: 'status', value: 'pending' },
      { type: 'set', path: 'status', value: 'paid' },
      { type: 'increment', path: 'payments', by: 1 },
    ])
    logger.info(`${order.id} paid (payments: ${order.payments})`)
    return order
  } catch (err) {
    if (err.code === 'test.failed') {
      logger.warn(`${input.orderId} is not pending any more, duplicate payment ignored`)
      return null
    }
    throw err
  }
}

/** Cron step (every minute in a real app): counts orders by status and prints a report. */
const cronReport = async ({ state, logger }) => {
  const orders = await state.getGroup('orders')
  const pending = orders.filter((order) => order.status === 'pending')
  const paid = orders.filter((order) => order.status === 'paid')
  logger.info(`pending: ${pending.map((order) => order.id).join(', ') || 'none'}`)
  logger.info(`paid: ${paid.map((order) => order.id).join(', ') || 'none'}`)
  const report = `report: ${pending.length} pending, ${paid.length} paid`
  console.log(report)
  return report
}

// The driver: what the framework would do with HTTP requests, queue messages and the cron tick.
async function main() {
  const state = await openStore()
  try {
    const earlier = (await state.keys('orders')).length
    console.log(earlier === 0 ? '-- a new store' : `-- the store holds ${earlier} orders from earlier runs`)
    console.log('-- API: five orders and one bad request')
    const created = []
    for (const body of [
      { item: 'book' },
      { item: 'lamp', quantity: 2 },
      { item: 'mug' },
      { quantity: 3 },
      { item: 'desk' },
      { item: 'pen', quantity: 10 },
    ]) {
      const res = await apiCreateOrder({ body }, { state, logger: stepLogger('ApiCreateOrder') })
      if (res.status === 201) created.push(res.body.id)
    }

    console.log('-- queue: payments for three orders, concurrently; the first one is delivered twice')
    const messages = [created[0], created[2], created[0], created[4]].map((orderId) => ({ orderId }))
    const results = await Promise.all(
      messages.map((input) => queueMarkPaid(input, { state, logger: stepLogger('QueueMarkPaid') })),
    )
    console.log(`${results.filter(Boolean).length} of ${messages.length} payment messages applied`)

    console.log('-- cron: report')
    await cronReport({ state, logger: stepLogger('CronReport') })
  } finally {
    await state.close()
  }
}

module.exports = { apiCreateOrder, queueMarkPaid, cronReport }

if (require.main === module) {
  main().catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
}
