// The plainest StateAdapter there is: a Map of groups, each a Map of keys to values, kept in
// insertion order by the Maps themselves. The conformance pass with
// STEPSTATE_TEST_ADAPTER=adapter runs every spec on it, so it shows that StateManager supplies
// everything but storage (checks, atomic updates, events, TTL) on top of any adapter. It keeps
// what it is given as it is given (no copies): StateManager must hand it fresh values and copy
// what it gives back.
import type { JsonValue, StateAdapter, StateEntry } from '../../index.js'

export class MapAdapter implements StateAdapter {
  readonly groups = new Map<string, Map<string, JsonValue>>()

  async get(group: string, key: string): Promise<JsonValue | null> {
    return this.groups.get(group)?.get(key) ?? null
  }

  async set(group: string, key: string, value: JsonValue): Promise<JsonValue | null> {
    let items = this.groups.get(group)
    if (items === undefined) {
      items = new Map()
      this.groups.set(group, items)
    }
    const previous = items.get(key) ?? null
    items.set(key, value)
    return previous
  }

  async delete(group: string, key: string): Promise<JsonValue | null> {
    const items = this.groups.get(group)
    if (items === undefined || !items.has(key)) return null
    const previous = items.get(key) as JsonValue
    items.delete(key)
    if (items.size === 0) this.groups.delete(group)
    return previous
  }

  async entries(group: string): Promise<Array<StateEntry<JsonValue>>> {
    return [...(this.groups.get(group) ?? [])].map(([key, value]) => ({ key, value }))
  }

  async clear(group: string): Promise<void> {
    this.groups.delete(group)
  }

  async listGroups(): Promise<string[]> {
    return [...this.groups.keys()]
  }
}
