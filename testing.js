'use strict'
// `stepstate/testing`: state for the tests of step handlers. Each test gets a fresh in-memory
// manager (nothing on disk, nothing shared with other tests), hands `{ state }` to the handler
// under test, and looks at what the handler did: the values it left and the change events it
// caused, in commit order.
//
//   const { createTestState, closeTestStates } = require('stepstate/testing')
//   afterEach(closeTestStates)
//   it('marks the order paid', async () => {
//     const t = createTestState()
//     await t.state.set('orders', 'o1', { status: 'pending' })
//     await handler(input, t.context({ logger }))
//     expect(await t.values('orders')).toEqual({ o1: { status: 'paid' } })
//     expect(await t.changes()).toContainEqual(expect.objectContaining({ event_type: 'state:updated' }))
//   })
//
// It loads the same addon as `stepstate`, which may be loaded any number of times in one process
// and in any number of worker threads or child processes (vitest's threads and forks pools,
// jest's per-file module registries).

const { StateManager } = require('./index.js')

/** Every test state not yet closed, for `closeTestStates`. */
const open = new Set()

/** Resolves after the change events of every write that resolved before the call have reached
 *  their listeners (they are delivered on a later turn of the event loop, never inside a write). */
async function settle(events) {
  let seen = -1
  // Until a full turn of the event loop brings no new event (at least two turns).
  for (let turns = 0; turns < 50 && (turns < 2 || seen !== events.length); turns++) {
    seen = events.length
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/**
 * A fresh manager for one test (in memory unless `options.adapter` says otherwise), recording
 * every change event from the start.
 */
function createTestState(options = {}) {
  const state = new StateManager(options)
  const events = []
  const off = state.onChange((event) => {
    events.push(event)
  })
  const testState = {
    /** The manager: hand it to the handler under test. */
    state,
    /** Every change event so far, in commit order (call `changes()` to wait for the latest). */
    events,
    /** `{ ...extra, state }`: the context a step handler takes. */
    context(extra = {}) {
      return { ...extra, state }
    },
    /** The events so far, once those of every write made before the call have arrived. */
    async changes() {
      await settle(events)
      return events.slice()
    },
    /** Forgets the events recorded so far (after a test's set-up, say). */
    async clearChanges() {
      await settle(events)
      events.length = 0
    },
    /** The group as an object `{ key: value }`, in insertion order. */
    async values(group) {
      const result = {}
      for (const { key, value } of await state.entries(group)) result[key] = value
      return result
    },
    /** Every group: `{ group: { key: value } }`. */
    async snapshot() {
      const result = {}
      for (const group of await state.listGroups()) result[group] = await testState.values(group)
      return result
    },
    /** Closes the manager (twice is harmless). */
    async close() {
      open.delete(testState)
      off()
      await state.close()
    },
  }
  open.add(testState)
  return testState
}

/** Closes every test state not yet closed: `afterEach(closeTestStates)`. */
async function closeTestStates() {
  await Promise.all([...open].map((testState) => testState.close()))
}

module.exports = { createTestState, closeTestStates }
