'use strict'
// The change-event suite: how fast events reach one listener (100k writes), and what
// listeners on other groups cost the writes (0, 1 and 100 of them). stepstate's memory store
// beside a Map+JSON store that notifies its listeners from JavaScript on a microtask, with
// the same event shape and a fresh copy of the values per event.

const { StateManager } = require('..')
const { MapJson } = require('./reference-stores')
const { measure, order, printTable } = require('./harness')
const { KEYS } = require('./workloads')

const WRITES = Number(process.env.BENCH_EVENTS || 100_000)

/** Map+JSON with in-process change events: the usual JS way, filtered by group and key. */
class MapJsonEvents extends MapJson {
  constructor() {
    super()
    this.listeners = []
  }
  onChange(listener, filter = {}) {
    const entry = { listener, filter }
    this.listeners.push(entry)
    return () => {
      this.listeners = this.listeners.filter((e) => e !== entry)
    }
  }
  async set(group, key, value) {
    const old = this.groups.get(group)?.get(key)
    const result = await super.set(group, key, value)
    for (const { listener, filter } of this.listeners) {
      if ((filter.group !== undefined && filter.group !== group) || (filter.key !== undefined && filter.key !== key)) continue
      const text = this.groups.get(group).get(key)
      queueMicrotask(() =>
        listener({
          type: 'state',
          event_type: old === undefined ? 'state:created' : 'state:updated',
          group_id: group,
          item_id: key,
          old_value: old === undefined ? null : JSON.parse(old),
          new_value: JSON.parse(text),
        }),
      )
    }
    return result
  }
}

const stores = [
  { name: 'stepstate', open: async () => new StateManager() },
  { name: 'Map+JSON+listeners', open: async () => new MapJsonEvents() },
]

const delivery = {
  name: `${WRITES / 1000}k writes (64 in flight) until one listener has every event`,
  async run(store) {
    let seen = 0
    let done
    const all = new Promise((resolve) => (done = resolve))
    store.onChange(
      () => {
        if (++seen === WRITES) done()
      },
      { group: 'orders' },
    )
    const value = order(1)
    let next = 0
    const worker = async () => {
      while (next < WRITES) await store.set('orders', `k${next++ % KEYS}`, value)
    }
    await Promise.all(Array.from({ length: 64 }, worker))
    await all
    return WRITES
  },
}

function withOtherListeners(count) {
  return {
    name: `set (awaited) with ${count} listener${count === 1 ? '' : 's'} on other groups`,
    setup(store) {
      for (let i = 0; i < count; i++) store.onChange(() => {}, { group: `other-${i}` })
    },
    async run(store) {
      const value = order(1)
      for (let i = 0; i < WRITES; i++) await store.set('orders', `k${i % KEYS}`, value)
      return WRITES
    },
  }
}

async function run() {
  const measurements = []
  for (const workload of [delivery, withOtherListeners(0), withOtherListeners(1), withOtherListeners(100)]) {
    measurements.push(await measure(stores, workload))
  }
  printTable('Change events (throughput: events delivered or writes per second)', 'stepstate', measurements)
}

module.exports = { run }
