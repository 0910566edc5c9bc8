'use strict'
// Workloads shared by the suites. Each is `{ name, unit?, setup?(store), run(store) -> ops }`
// (see harness.measure); all use the ~230-byte order of harness.order.

const { order } = require('./harness')

const KEYS = 1000

/** The ops of an `update`: count a payment and set the status. */
const updateOps = [
  { type: 'increment', path: 'paid', by: 1 },
  { type: 'set', path: 'status', value: 'paid' },
]

async function fill(store, group, count) {
  for (let i = 0; i < count; i++) await store.set(group, `k${i}`, order(i))
}

const fillKeys = (store) => fill(store, 'orders', KEYS)

/** `ops` awaited calls of `call(store, i)`, one at a time. */
function sequential(name, ops, call, setup) {
  return {
    name: `${name} (awaited, one at a time)`,
    setup,
    async run(store) {
      for (let i = 0; i < ops; i++) await call(store, i)
      return ops
    },
  }
}

/** `ops` calls of `call(store, i)` with `inFlight` of them running at any time. */
function concurrent(name, ops, inFlight, call, setup) {
  return {
    name: `${name}, ${inFlight} in flight`,
    setup,
    async run(store) {
      let next = 0
      const worker = async () => {
        while (next < ops) await call(store, next++)
      }
      await Promise.all(Array.from({ length: inFlight }, worker))
      return ops
    },
  }
}

const calls = {
  get: (store, i) => store.get('orders', `k${i % KEYS}`),
  set: (store, i) => store.set('orders', `k${(i * 7919) % KEYS}`, order(i)),
  update: (store, i) => store.update('orders', `k${(i * 7919) % KEYS}`, updateOps),
  /** 50% get, 30% update, 20% set. */
  mixed(store, i) {
    const kind = i % 10
    if (kind < 5) return calls.get(store, (i * 7919) % KEYS)
    if (kind < 8) return calls.update(store, i)
    return calls.set(store, i)
  },
}

module.exports = { KEYS, updateOps, fill, fillKeys, sequential, concurrent, calls }
