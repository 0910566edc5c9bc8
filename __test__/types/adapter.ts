// Type tests: a user's own store. A class that `implements StateAdapter` compiles, with or
// without `close`; a manager opened over it is an ordinary
// StateManager; an object that lacks a method is not an adapter.

import { StateManager, type JsonValue, type StateAdapter, type StateEntry } from '../../index'
import { expectType } from './assert'

class MapAdapter implements StateAdapter {
  private readonly groups = new Map<string, Map<string, JsonValue>>()
  async get(group: string, key: string): Promise<JsonValue | null> {
    return this.groups.get(group)?.get(key) ?? null
  }
  async set(group: string, key: string, value: JsonValue): Promise<JsonValue | null> {
    const items = this.groups.get(group) ?? new Map<string, JsonValue>()
    this.groups.set(group, items)
    const previous = items.get(key) ?? null
    items.set(key, value)
    return previous
  }
  async delete(group: string, key: string): Promise<JsonValue | null> {
    const previous = this.groups.get(group)?.get(key) ?? null
    this.groups.get(group)?.delete(key)
    return previous
  }
  async entries(group: string): Promise<StateEntry<JsonValue>[]> {
    return [...(this.groups.get(group) ?? [])].map(([key, value]) => ({ key, value }))
  }
  async clear(group: string): Promise<void> {
    this.groups.delete(group)
  }
  async listGroups(): Promise<string[]> {
    return [...this.groups.keys()]
  }
  async close(): Promise<void> {}
}

// An object literal with async methods is an adapter too.
const plain: StateAdapter = {
  get: async () => null,
  set: async () => null,
  delete: async () => null,
  entries: async () => [],
  clear: async () => undefined,
  listGroups: async () => [],
}

async function usesAdapters() {
  type Order = { id: string; total: number }
  const state = new StateManager<{ orders: Order }>({ adapter: new MapAdapter() })
  expectType<Order | null>()(await state.get('orders', 'o1'))
  const opened = await StateManager.open({ adapter: plain, ttl: 60, maxValueBytes: 1024 })
  await opened.close()

  // @ts-expect-error: an adapter must have every method (no listGroups here)
  new StateManager({ adapter: { get: async () => null, set: async () => null, delete: async () => null, entries: async () => [], clear: async () => {} } })
}

void usesAdapters
