// Type tests: StateOptions for every adapter (memory, file, redis, a custom StateAdapter
// object), SetOptions, and StateError: its `code` (every SPEC code, op codes, and unknown
// future codes still assignable) and optional `opIndex`. Wrong option values and adapters
// missing a method do not compile.

import {
  StateManager,
  StateError,
  type StateAdapter,
  type StateOptions,
  type SetOptions,
  type StateErrorCode,
  type JsonValue,
} from '../../index'
import { expectType } from './assert'

async function options() {
  const mem = new StateManager()
  const mem2 = new StateManager({ adapter: 'memory', ttl: 3600, maxValueBytes: 1 << 20, cacheBytes: 0 })
  const local = await StateManager.open({ adapter: 'file', path: '.stepstate', sync: 'everysec' })
  const always = await StateManager.open({ adapter: 'file', path: '/var/lib/app/state', sync: 'always' })
  const lazy = new StateManager({ adapter: 'file', path: '.stepstate', sync: 'no' })
  const dist = await StateManager.open({ adapter: 'redis', url: 'redis://127.0.0.1:6379', prefix: 'stepstate:' })
  const dist2 = await StateManager.open({
    adapter: 'redis',
    host: 'redis.internal',
    port: 6380,
    password: 's3cret',
    db: 2,
    tls: true,
    prefix: 'app:',
    ttl: 60,
  })
  const dist3 = await StateManager.open({
    adapter: 'redis',
    host: 'redis.internal',
    username: 'steps',
    password: 's3cret',
    tls: { ca: '-----BEGIN CERTIFICATE-----' },
    commandTimeout: 1000,
    eventsKept: 10_000,
  })
  const config: StateOptions = { adapter: 'file', path: '.stepstate' }
  await StateManager.open(config)
  const setOptions: SetOptions = { ttl: 30 }
  await mem.set('sessions', 's1', { user: 'u1' }, setOptions)
  for (const s of [mem, mem2, local, always, lazy, dist, dist2, dist3]) await s.close()

  // @ts-expect-error cacheBytes is a number of bytes
  new StateManager({ cacheBytes: '4MB' })
  // @ts-expect-error sync is 'always' | 'everysec' | 'no'
  await StateManager.open({ adapter: 'file', path: '.stepstate', sync: 'sometimes' })
  // @ts-expect-error sync is not a boolean
  new StateManager({ adapter: 'file', sync: true })
  // @ts-expect-error unknown adapter name
  new StateManager({ adapter: 'sqlite' })
  // @ts-expect-error port is a number
  new StateManager({ adapter: 'redis', port: '6379' })
  // @ts-expect-error eventsKept is a number of events
  new StateManager({ adapter: 'redis', eventsKept: 'all' })
  // @ts-expect-error commandTimeout is a number of milliseconds
  new StateManager({ adapter: 'redis', commandTimeout: '5s' })
  // @ts-expect-error ttl is a number of seconds
  new StateManager({ ttl: '1h' })
  // @ts-expect-error unknown option
  new StateManager({ adapter: 'memory', persist: true })
}

// A custom adapter: a plain object implementing StateAdapter over Maps.
function mapAdapter(): StateAdapter {
  const groups = new Map<string, Map<string, JsonValue>>()
  const group = (name: string) => {
    let items = groups.get(name)
    if (!items) groups.set(name, (items = new Map()))
    return items
  }
  return {
    async get(g, k) {
      return groups.get(g)?.get(k) ?? null
    },
    async set(g, k, value) {
      const items = group(g)
      const previous = items.get(k) ?? null
      items.set(k, value)
      return previous
    },
    async delete(g, k) {
      const items = groups.get(g)
      const previous = items?.get(k) ?? null
      items?.delete(k)
      return previous
    },
    async entries(g) {
      return [...(groups.get(g) ?? new Map<string, JsonValue>())].map(([key, value]) => ({ key, value }))
    },
    async clear(g) {
      groups.delete(g)
    },
    async listGroups() {
      return [...groups].filter(([, items]) => items.size > 0).map(([name]) => name).sort()
    },
  }
}

async function customAdapter() {
  const custom = new StateManager<{ counters: { n: number } }>({ adapter: mapAdapter(), ttl: 10 })
  await custom.update('counters', 'c1', [{ type: 'increment', path: 'n', by: 1 }])
  await custom.close()

  // @ts-expect-error an adapter must implement every method (listGroups is missing)
  const incomplete: StateAdapter = {
    async get() { return null },
    async set() { return null },
    async delete() { return null },
    async entries() { return [] },
    async clear() {},
  }
  // @ts-expect-error adapter methods are async
  const syncGet: StateAdapter = { ...mapAdapter(), get: (_g: string, _k: string) => null }
  // @ts-expect-error entries resolves { key, value } objects
  const badEntries: StateAdapter = { ...mapAdapter(), entries: async () => [['k', 1]] }
  void incomplete, syncGet, badEntries
}

async function errors() {
  const state = new StateManager()
  try {
    await state.update('orders', 'o1', [{ type: 'test', path: 'status', value: 'pending' }])
  } catch (err) {
    if (err instanceof StateError) {
      expectType<StateErrorCode>()(err.code)
      expectType<number | undefined>()(err.opIndex)
      expectType<string>()(err.message)
      if (err.code === 'test.failed') console.log('lost the race at op', err.opIndex)
      switch (err.code) {
        case 'INVALID_ARGUMENT':
        case 'INVALID_VALUE':
        case 'INVALID_OP':
        case 'VALUE_TOO_LARGE':
        case 'LOCKED':
        case 'CORRUPT':
        case 'CLOSED':
        case 'BACKEND_UNAVAILABLE':
        case 'IO':
        case 'test.failed':
        case 'increment.not_number':
        case 'merge.target_not_object':
        case 'append.type_mismatch':
        case 'path.proto_polluted':
        case 'decrement.not_number': // an op code added later is still a valid code
          break
      }
      // @ts-expect-error code is read-only
      err.code = 'IO'
      // @ts-expect-error opIndex is read-only
      err.opIndex = 1
    }
    if (err instanceof StateError) {
      // A StateError is an Error.
      const asError: Error = err
      void asError
    }
  }
  // Built the way the store builds it (custom adapters, test doubles).
  const conflict = new StateError('test.failed', 'update "orders"/"o1": op 0 (test): status is "paid"', 0)
  expectType<'StateError'>()(conflict.name)
  // @ts-expect-error the code comes first and is required
  new StateError('something failed')
  void conflict
  // A code of a later version is still assignable; a non-string is not.
  const future: StateErrorCode = 'remove.not_found'
  // @ts-expect-error a code is a string
  const notACode: StateErrorCode = 404
  void future, notACode
}

declare const console: { log(...args: unknown[]): void }

export { options, customAdapter, errors }
