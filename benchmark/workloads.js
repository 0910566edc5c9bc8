'use strict'
// Workloads shared by the suites. Each is `{ name, unit?, setup?(store), run(store) -> ops }`
// (see harness.measure); all use the ~230-byte order of harness.order.

const { order } = require('./harness')

/** The hot key set: small enough for a manager's read cache. */
const KEYS = 1000
/** The cold key set: 100,000 distinct keys, read and updated in a fixed random order, which no
 *  cache of a few MiB holds. */
const COLD_KEYS = 100_000

/** A fixed random permutation of 0..n-1 (mulberry32 with a constant seed), the same in every
 *  round and for every store. */
function permutation(n, seed = 0x5eed) {
  const out = Array.from({ length: n }, (_, i) => i)
  let state = seed
  const next = () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}
const coldOrder = permutation(COLD_KEYS)

/** The ops of an `update`: count a payment and set the status. */
const updateOps = [
  { type: 'increment', path: 'paid', by: 1 },
  { type: 'set', path: 'status', value: 'paid' },
]

async function fill(store, group, count) {
  for (let i = 0; i < count; i++) await store.set(group, `k${i}`, order(i))
}

const fillKeys = (store) => fill(store, 'orders', KEYS)
const fillColdKeys = (store) => fill(store, 'orders', COLD_KEYS)

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

/** The cold workloads: every key distinct, or picked at random among 100,000. */
const coldCalls = {
  /** A new key each time (100,000 of them in a round). */
  set: (store, i) => store.set('orders', `k${i}`, order(i)),
  get: (store, i) => store.get('orders', `k${coldOrder[i % COLD_KEYS]}`),
  update: (store, i) => store.update('orders', `k${coldOrder[i % COLD_KEYS]}`, updateOps),
  mixed(store, i) {
    const kind = i % 10
    const key = `k${coldOrder[i % COLD_KEYS]}`
    if (kind < 5) return store.get('orders', key)
    if (kind < 8) return store.update('orders', key, updateOps)
    return store.set('orders', key, order(i))
  },
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

module.exports = { KEYS, COLD_KEYS, updateOps, fill, fillKeys, fillColdKeys, sequential, concurrent, calls, coldCalls }
