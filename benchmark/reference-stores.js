'use strict'
// The reference stores that stepstate is measured against, implementing the same contract for
// the methods the benchmark uses: results are fresh copies and have the same shapes
// (`set`/`update` -> { new_value, old_value }, `get` -> value or null, `getGroup` -> array).
//
// - MapClone: a JS Map of objects, copying with structuredClone on the way in and out.
// - MapJson:  a JS Map of JSON text (JSON.stringify on set, JSON.parse on get) — the floor for
//             any store that returns copies.
// `update` applies the op subset the benchmark uses (set, increment, merge) in plain JS.

function walk(root, path, create) {
  const segments = path.split('.')
  let node = root
  for (let i = 0; i < segments.length - 1; i++) {
    if (node[segments[i]] === undefined && create) node[segments[i]] = {}
    node = node[segments[i]]
  }
  return [node, segments[segments.length - 1]]
}

function applyOps(value, ops) {
  for (const op of ops) {
    if (op.type === 'merge') {
      Object.assign(value, op.value)
      continue
    }
    const [parent, last] = walk(value, op.path, true)
    if (op.type === 'set') parent[last] = op.value
    else if (op.type === 'increment') parent[last] = (parent[last] ?? 0) + op.by
    else throw new Error(`reference store: op ${op.type} not supported`)
  }
  return value
}

class GroupedMap {
  constructor() {
    this.groups = new Map()
  }
  group(name) {
    let group = this.groups.get(name)
    if (group === undefined) {
      group = new Map()
      this.groups.set(name, group)
    }
    return group
  }
}

/** Map of live objects, copied with structuredClone in and out. */
class MapClone extends GroupedMap {
  async set(group, key, value) {
    const items = this.group(group)
    const old = items.get(key)
    const stored = structuredClone(value)
    items.set(key, stored)
    return { new_value: structuredClone(stored), old_value: old === undefined ? null : old }
  }
  async get(group, key) {
    const value = this.groups.get(group)?.get(key)
    return value === undefined ? null : structuredClone(value)
  }
  async update(group, key, ops) {
    const items = this.group(group)
    const old = items.get(key)
    const next = applyOps(old === undefined ? {} : structuredClone(old), ops)
    items.set(key, next)
    return { new_value: structuredClone(next), old_value: old === undefined ? null : old }
  }
  async getGroup(group) {
    const items = this.groups.get(group)
    return items === undefined ? [] : structuredClone([...items.values()])
  }
  async close() {}
}

/** Map of JSON text: stringify on set, parse on get. */
class MapJson extends GroupedMap {
  async set(group, key, value) {
    const items = this.group(group)
    const old = items.get(key)
    const text = JSON.stringify(value)
    items.set(key, text)
    return { new_value: JSON.parse(text), old_value: old === undefined ? null : JSON.parse(old) }
  }
  async get(group, key) {
    const text = this.groups.get(group)?.get(key)
    return text === undefined ? null : JSON.parse(text)
  }
  async update(group, key, ops) {
    const items = this.group(group)
    const old = items.get(key)
    const oldValue = old === undefined ? null : JSON.parse(old)
    const next = applyOps(old === undefined ? {} : JSON.parse(old), ops)
    const text = JSON.stringify(next)
    items.set(key, text)
    return { new_value: JSON.parse(text), old_value: oldValue }
  }
  async getGroup(group) {
    const items = this.groups.get(group)
    if (items === undefined) return []
    const values = []
    for (const text of items.values()) values.push(JSON.parse(text))
    return values
  }
  async close() {}
}

module.exports = { MapClone, MapJson, applyOps }
