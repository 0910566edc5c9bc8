// The result of every method of the in-memory store, exactly as SPEC "Methods" states it,
// and how values travel in and out (JSON semantics, fresh copies, falsy values).
import { execFileSync } from 'node:child_process'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { StateError, StateManager } from '../index.js'
import { expectRejection } from './helpers/assertions'
import { closeManagers, freshManager, track } from './helpers/managers'

const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..')

afterEach(closeManagers)

describe('set', () => {
  it('resolves to the new value and a null old value when the key was absent', async () => {
    const state = freshManager()
    const result = await state.set('orders', 'o1', { status: 'pending', total: 12 })
    expect(Object.keys(result).sort()).toEqual(['new_value', 'old_value'])
    expect(result).toEqual({ new_value: { status: 'pending', total: 12 }, old_value: null })
  })

  it('resolves to the new value and the previous value when the key existed', async () => {
    const state = freshManager()
    await state.set('orders', 'o1', { status: 'pending' })
    const result = await state.set('orders', 'o1', { status: 'paid' })
    expect(result).toEqual({ new_value: { status: 'paid' }, old_value: { status: 'pending' } })
  })

  it('stores the value so that get returns it', async () => {
    const state = freshManager()
    await state.set('orders', 'o1', ['a', 1, { b: true }])
    expect(await state.get('orders', 'o1')).toEqual(['a', 1, { b: true }])
  })

  it('reports a falsy previous value as it was, not as null', async () => {
    const state = freshManager()
    await state.set('g', 'zero', 0)
    expect(await state.set('g', 'zero', 1)).toEqual({ new_value: 1, old_value: 0 })
    await state.set('g', 'no', false)
    expect(await state.set('g', 'no', true)).toEqual({ new_value: true, old_value: false })
    await state.set('g', 'empty', '')
    expect(await state.set('g', 'empty', 'x')).toEqual({ new_value: 'x', old_value: '' })
  })
})

describe('get', () => {
  it('resolves to null for a key that was never set, in a known or an unknown group', async () => {
    const state = freshManager()
    await state.set('known', 'a', 1)
    expect(await state.get('known', 'b')).toBeNull()
    expect(await state.get('unknown', 'a')).toBeNull()
  })

  it('resolves to null after the key was deleted', async () => {
    const state = freshManager()
    await state.set('g', 'k', { a: 1 })
    await state.delete('g', 'k')
    expect(await state.get('g', 'k')).toBeNull()
  })
})

describe('getGroup and list', () => {
  it('return the values of a group in insertion order', async () => {
    const state = freshManager()
    for (const key of ['c', 'a', 'b']) await state.set('g', key, { key })
    expect(await state.getGroup('g')).toEqual([{ key: 'c' }, { key: 'a' }, { key: 'b' }])
    expect(await state.list('g')).toEqual([{ key: 'c' }, { key: 'a' }, { key: 'b' }])
  })

  it('keep the place of a key that is overwritten', async () => {
    const state = freshManager()
    await state.set('g', 'first', 1)
    await state.set('g', 'second', 2)
    await state.set('g', 'third', 3)
    await state.set('g', 'first', 10)
    await state.update('g', 'second', [{ type: 'set', path: '', value: 20 }])
    expect(await state.getGroup('g')).toEqual([10, 20, 3])
    expect(await state.list('g')).toEqual([10, 20, 3])
  })

  it('move a key that was deleted and set again to the end', async () => {
    const state = freshManager()
    await state.set('g', 'first', 1)
    await state.set('g', 'second', 2)
    await state.set('g', 'third', 3)
    await state.delete('g', 'first')
    await state.set('g', 'first', 1)
    expect(await state.getGroup('g')).toEqual([2, 3, 1])
    expect(await state.list('g')).toEqual([2, 3, 1])
  })

  it('resolve to an empty array for an unknown group', async () => {
    const state = freshManager()
    await state.set('other', 'k', 1)
    expect(await state.getGroup('missing')).toEqual([])
    expect(await state.list('missing')).toEqual([])
  })

  it('include null and other falsy values as items of the group', async () => {
    const state = freshManager()
    const values = [0, false, '', null, [], {}]
    for (const [index, value] of values.entries()) await state.set('g', `k${index}`, value)
    expect(await state.getGroup('g')).toEqual(values)
    expect(await state.keys('g')).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'k5'])
  })
})

describe('entries', () => {
  it('resolves to { key, value } pairs in insertion order', async () => {
    const state = freshManager()
    await state.set('g', 'b', { n: 1 })
    await state.set('g', 'a', 'two')
    await state.set('g', 'b', { n: 3 })
    const entries = await state.entries('g')
    expect(entries).toEqual([
      { key: 'b', value: { n: 3 } },
      { key: 'a', value: 'two' },
    ])
    for (const entry of entries) expect(Object.keys(entry).sort()).toEqual(['key', 'value'])
  })

  it('resolves to an empty array for an unknown group', async () => {
    const state = freshManager()
    expect(await state.entries('missing')).toEqual([])
  })
})

describe('keys', () => {
  it('resolves to the keys in insertion order', async () => {
    const state = freshManager()
    for (const key of ['zeta', 'alpha', 'mid']) await state.set('g', key, key)
    await state.set('g', 'zeta', 'again')
    expect(await state.keys('g')).toEqual(['zeta', 'alpha', 'mid'])
  })

  it('resolves to an empty array for an unknown group', async () => {
    const state = freshManager()
    expect(await state.keys('missing')).toEqual([])
  })
})

describe('listGroups', () => {
  it('resolves to an empty array for a new store', async () => {
    const state = freshManager()
    expect(await state.listGroups()).toEqual([])
  })

  it('resolves to the sorted names of the groups', async () => {
    const state = freshManager()
    for (const group of ['zeta', 'alpha', 'Beta', 'mid:dle', 'alpha/2']) await state.set(group, 'k', 1)
    await state.set('alpha', 'k2', 2)
    expect(await state.listGroups()).toEqual(['Beta', 'alpha', 'alpha/2', 'mid:dle', 'zeta'])
  })

  it('drops a group once its last key is deleted', async () => {
    const state = freshManager()
    await state.set('a', 'k1', 1)
    await state.set('a', 'k2', 2)
    await state.set('b', 'k', 1)
    await state.delete('a', 'k1')
    expect(await state.listGroups()).toEqual(['a', 'b'])
    await state.delete('a', 'k2')
    expect(await state.listGroups()).toEqual(['b'])
  })

  it('drops a group once it is cleared', async () => {
    const state = freshManager()
    await state.set('a', 'k', 1)
    await state.set('b', 'k', 1)
    await state.clear('a')
    expect(await state.listGroups()).toEqual(['b'])
  })
})

describe('delete', () => {
  it('resolves to the deleted value and removes only that key', async () => {
    const state = freshManager()
    await state.set('g', 'a', { a: 1 })
    await state.set('g', 'b', { b: 2 })
    expect(await state.delete('g', 'a')).toEqual({ a: 1 })
    expect(await state.get('g', 'a')).toBeNull()
    expect(await state.entries('g')).toEqual([{ key: 'b', value: { b: 2 } }])
  })

  it('resolves to null when the key is absent', async () => {
    const state = freshManager()
    await state.set('g', 'a', 1)
    expect(await state.delete('g', 'missing')).toBeNull()
    expect(await state.delete('missing', 'a')).toBeNull()
    expect(await state.getGroup('g')).toEqual([1])
  })

  it('resolves to a falsy deleted value as it was', async () => {
    const state = freshManager()
    await state.set('g', 'zero', 0)
    await state.set('g', 'no', false)
    await state.set('g', 'empty', '')
    expect(await state.delete('g', 'zero')).toBe(0)
    expect(await state.delete('g', 'no')).toBe(false)
    expect(await state.delete('g', 'empty')).toBe('')
    expect(await state.listGroups()).toEqual([])
  })
})

describe('clear', () => {
  it('removes every item of the group whatever the items look like', async () => {
    const state = freshManager()
    const values = [null, 0, false, '', [], {}, 'plain', { nested: { deep: [1, { x: null }] } }, '{"key":"json-looking"}']
    for (const [index, value] of values.entries()) await state.set('g', `item:${index}`, value)
    await state.set('g', 'g', 'a key named like its group')
    await expect(state.clear('g')).resolves.not.toBeInstanceOf(Error)
    expect(await state.getGroup('g')).toEqual([])
    expect(await state.entries('g')).toEqual([])
    expect(await state.keys('g')).toEqual([])
    for (const index of values.keys()) expect(await state.get('g', `item:${index}`)).toBeNull()
    expect(await state.listGroups()).toEqual([])
  })

  it('leaves other groups alone, including groups whose names start with the same text', async () => {
    const state = freshManager()
    await state.set('a', 'k', 1)
    await state.set('a:b', 'k', 2)
    await state.set('ab', 'k', 3)
    await state.set('a/b', 'k', 4)
    await state.clear('a')
    expect(await state.listGroups()).toEqual(['a/b', 'a:b', 'ab'])
    expect(await state.get('a:b', 'k')).toBe(2)
    expect(await state.get('ab', 'k')).toBe(3)
    expect(await state.get('a/b', 'k')).toBe(4)
  })

  it('resolves for an unknown group', async () => {
    const state = freshManager()
    await state.set('other', 'k', 1)
    await expect(state.clear('missing')).resolves.not.toBeInstanceOf(Error)
    expect(await state.listGroups()).toEqual(['other'])
  })

  it('lets the group be filled again afterwards', async () => {
    const state = freshManager()
    await state.set('g', 'a', 1)
    await state.clear('g')
    expect(await state.set('g', 'a', 2)).toEqual({ new_value: 2, old_value: null })
    expect(await state.entries('g')).toEqual([{ key: 'a', value: 2 }])
  })
})

describe('update', () => {
  it('resolves to the new value and a null old value when the key was absent', async () => {
    const state = freshManager()
    const result = await state.update('g', 'k', [{ type: 'set', path: 'a', value: 1 }])
    expect(Object.keys(result).sort()).toEqual(['new_value', 'old_value'])
    expect(result).toEqual({ new_value: { a: 1 }, old_value: null })
    expect(await state.get('g', 'k')).toEqual({ a: 1 })
  })

  it('resolves to the new value and the previous value when the key existed', async () => {
    const state = freshManager()
    await state.set('g', 'k', { a: 1, b: 'x' })
    const result = await state.update('g', 'k', [{ type: 'increment', path: 'a', by: 2 }])
    expect(result).toEqual({ new_value: { a: 3, b: 'x' }, old_value: { a: 1, b: 'x' } })
  })
})

describe('close', () => {
  it('can be called twice without harm', async () => {
    const state = freshManager()
    await state.set('g', 'k', 1)
    await state.close()
    await expect(state.close()).resolves.not.toBeInstanceOf(Error)
  })

  it('makes every later call reject with code CLOSED', async () => {
    const state = freshManager()
    await state.set('g', 'k', { a: 1 })
    await state.close()
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['set', () => state.set('g', 'k', 2)],
      ['get', () => state.get('g', 'k')],
      ['getGroup', () => state.getGroup('g')],
      ['list', () => state.list('g')],
      ['entries', () => state.entries('g')],
      ['keys', () => state.keys('g')],
      ['listGroups', () => state.listGroups()],
      ['delete', () => state.delete('g', 'k')],
      ['clear', () => state.clear('g')],
      ['update', () => state.update('g', 'k', [{ type: 'increment', path: 'a', by: 1 }])],
    ]
    for (const [name, call] of calls) {
      const err = await expectRejection(call, 'CLOSED')
      expect(err, `${name} after close`).toBeInstanceOf(Error)
    }
  })
})

describe('StateManager.open', () => {
  it('resolves to a working in-memory manager with no options', async () => {
    const state = track(await StateManager.open())
    expect(state).toBeInstanceOf(StateManager)
    expect(await state.set('g', 'k', { a: 1 })).toEqual({ new_value: { a: 1 }, old_value: null })
    expect(await state.get('g', 'k')).toEqual({ a: 1 })
  })

  it('resolves to a working manager for an explicit memory adapter', async () => {
    const state = track(await StateManager.open({ adapter: 'memory' }))
    await state.set('g', 'k', 1)
    expect(await state.listGroups()).toEqual(['g'])
  })

  it('gives stores that share nothing with each other', async () => {
    const first = track(await StateManager.open())
    const second = freshManager({ adapter: 'memory' })
    await first.set('g', 'k', 'first')
    expect(await second.get('g', 'k')).toBeNull()
    expect(await second.listGroups()).toEqual([])
  })
})

describe('values', () => {
  it.each([
    ['0', 0],
    ['false', false],
    ["''", ''],
    ['null', null],
    ['[]', []],
    ['{}', {}],
  ])('round-trip the falsy value %s exactly', async (_name, value) => {
    const state = freshManager()
    expect(await state.set('g', 'k', value)).toEqual({ new_value: value, old_value: null })
    expect(await state.get('g', 'k')).toStrictEqual(value)
    expect(await state.getGroup('g')).toStrictEqual([value])
    expect(await state.entries('g')).toStrictEqual([{ key: 'k', value }])
    expect(await state.keys('g')).toEqual(['k'])
  })

  it('round-trip numbers, strings and nesting exactly', async () => {
    const state = freshManager()
    const value = {
      integers: [Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, -1, 0],
      floats: [0.1, -2.5e-7, 1.7976931348623157e308, 5e-324, 0.30000000000000004],
      text: 'quotes " and \\ backslash, newline\n, tab\t, NUL \u0000, emoji 😀, accents é, CJK 漢字',
      deep: { a: { b: { c: { d: [[[{ e: true }]]] } } } },
    }
    await state.set('g', 'k', value)
    expect(await state.get('g', 'k')).toStrictEqual(value)
  })

  it('round-trip strings holding a lone surrogate as JSON.stringify writes them', async () => {
    const state = freshManager()
    const value = { lone: 'a\ud800b', trailing: '\udc00' }
    await state.set('g', 'k', value)
    expect(await state.get('g', 'k')).toStrictEqual(JSON.parse(JSON.stringify(value)))
  })

  it('come back from get as fresh copies that can be mutated without changing the store', async () => {
    const state = freshManager()
    await state.set('g', 'k', { list: [1, 2], inner: { a: 1 } })
    const first = await state.get('g', 'k')
    first.list.push(3)
    first.inner.a = 99
    first.extra = true
    const second = await state.get('g', 'k')
    expect(second).toEqual({ list: [1, 2], inner: { a: 1 } })
    expect(second).not.toBe(first)
  })

  it('are copied by set, so mutating the object passed to set changes nothing', async () => {
    const state = freshManager()
    const value = { list: [1], inner: { a: 1 } }
    const result = await state.set('g', 'k', value)
    value.list.push(2)
    value.inner.a = 2
    expect(await state.get('g', 'k')).toEqual({ list: [1], inner: { a: 1 } })
    expect(result.new_value).toEqual({ list: [1], inner: { a: 1 } })
  })

  it('come back from every reading method as copies that do not alias the store', async () => {
    const state = freshManager()
    await state.set('g', 'k', { n: 1 })
    const setResult = await state.set('g', 'k', { n: 2 })
    setResult.new_value.n = 100
    setResult.old_value.n = 100
    ;(await state.getGroup('g'))[0].n = 100
    ;(await state.list('g'))[0].n = 100
    ;(await state.entries('g'))[0].value.n = 100
    const updateResult = await state.update('g', 'k', [{ type: 'set', path: 'm', value: 1 }])
    updateResult.new_value.n = 100
    updateResult.old_value.n = 100
    expect(await state.get('g', 'k')).toEqual({ n: 2, m: 1 })
  })

  it('honour toJSON, so a Date is stored as its ISO string', async () => {
    const state = freshManager()
    const at = new Date('2024-05-06T07:08:09.010Z')
    const custom = { toJSON: () => ({ custom: 'form' }) }
    const result = await state.set('g', 'k', { at, custom, list: [at] })
    const expected = { at: '2024-05-06T07:08:09.010Z', custom: { custom: 'form' }, list: ['2024-05-06T07:08:09.010Z'] }
    expect(result.new_value).toEqual(expected)
    expect(await state.get('g', 'k')).toEqual(expected)
    await state.set('g', 'date', at)
    expect(await state.get('g', 'date')).toBe('2024-05-06T07:08:09.010Z')
  })

  it('omit nested undefined and function properties as JSON.stringify does', async () => {
    const state = freshManager()
    const value = { kept: 1, gone: undefined, fn() {}, nested: { gone: undefined, kept: 'x' }, list: [1, undefined, () => 1] }
    await state.set('g', 'k', value)
    const stored = await state.get('g', 'k')
    expect(stored).toStrictEqual({ kept: 1, nested: { kept: 'x' }, list: [1, null, null] })
    expect(Object.keys(stored)).toEqual(['kept', 'nested', 'list'])
  })

  it('store nested NaN and Infinity as null as JSON.stringify does', async () => {
    const state = freshManager()
    await state.set('g', 'k', { nan: NaN, inf: Infinity, list: [-Infinity] })
    expect(await state.get('g', 'k')).toStrictEqual({ nan: null, inf: null, list: [null] })
  })
})

describe('names', () => {
  it('accept groups and keys with colons, slashes, spaces and any unicode', async () => {
    const state = freshManager()
    const names = ['a:b', 'a/b', '/leading', 'trailing:', 'with space', 'ünïcödé', '漢字', '😀', '..', '*', '%2F', 'a\nb']
    for (const group of names) for (const key of names) await state.set(group, key, `${group}|${key}`)
    expect(await state.listGroups()).toEqual([...names].sort())
    for (const group of names) {
      expect(await state.keys(group)).toEqual(names)
      for (const key of names) expect(await state.get(group, key)).toBe(`${group}|${key}`)
    }
  })

  it('never confuse a group and key with another pair that joins to the same text', async () => {
    const state = freshManager()
    await state.set('x', 'y:z', 'x + y:z')
    await state.set('x:y', 'z', 'x:y + z')
    await state.set('x/y', 'z', 'x/y + z')
    await state.set('x', 'y/z', 'x + y/z')
    expect(await state.get('x', 'y:z')).toBe('x + y:z')
    expect(await state.get('x:y', 'z')).toBe('x:y + z')
    expect(await state.get('x/y', 'z')).toBe('x/y + z')
    expect(await state.get('x', 'y/z')).toBe('x + y/z')
    expect(await state.keys('x')).toEqual(['y:z', 'y/z'])
    expect(await state.listGroups()).toEqual(['x', 'x/y', 'x:y'])
  })
})

describe('groups', () => {
  it('are independent: the same key in two groups holds two values', async () => {
    const state = freshManager()
    await state.set('orders', 'id-1', { kind: 'order' })
    await state.set('users', 'id-1', { kind: 'user' })
    expect(await state.get('orders', 'id-1')).toEqual({ kind: 'order' })
    expect(await state.get('users', 'id-1')).toEqual({ kind: 'user' })
    await state.update('orders', 'id-1', [{ type: 'set', path: 'kind', value: 'changed' }])
    expect(await state.get('users', 'id-1')).toEqual({ kind: 'user' })
    expect(await state.delete('orders', 'id-1')).toEqual({ kind: 'changed' })
    expect(await state.get('users', 'id-1')).toEqual({ kind: 'user' })
    expect(await state.listGroups()).toEqual(['users'])
  })
})

describe('module formats', () => {
  it('expose StateManager and StateError to ESM through index.mjs', async () => {
    const esm = await import('../index.mjs')
    expect(esm.StateManager).toBe(StateManager)
    expect(esm.StateError).toBe(StateError)
    const state = track(new esm.StateManager())
    await state.set('g', 'k', { via: 'esm' })
    expect(await state.get('g', 'k')).toEqual({ via: 'esm' })
  })

  it('give ESM importers the very same StateManager class as CommonJS requirers, in plain Node', () => {
    const script = `
      import { createRequire } from 'node:module'
      import { pathToFileURL } from 'node:url'
      const root = ${JSON.stringify(repositoryRoot)}
      const require = createRequire(root + '/package.json')
      const cjs = require(root + '/index.js')
      const cjsByName = require('stepstate')
      const esm = await import(pathToFileURL(root + '/index.mjs').href)
      const esmByName = await import('stepstate')
      const state = new esmByName.StateManager()
      await state.set('g', 'k', 1)
      const value = await state.get('g', 'k')
      await state.close()
      console.log(JSON.stringify({
        managerDirect: esm.StateManager === cjs.StateManager,
        managerByName: esmByName.StateManager === cjsByName.StateManager && cjsByName.StateManager === cjs.StateManager,
        errorDirect: esm.StateError === cjs.StateError,
        errorByName: esmByName.StateError === cjs.StateError,
        value,
      }))
    `
    const output = execFileSync(process.execPath, ['--input-type=module', '--eval', script], {
      cwd: repositoryRoot,
      encoding: 'utf8',
    })
    expect(JSON.parse(output.trim().split('\n').pop() as string)).toEqual({
      managerDirect: true,
      managerByName: true,
      errorDirect: true,
      errorByName: true,
      value: 1,
    })
  })

  it('export StateError as an Error subclass', () => {
    expect(typeof StateError).toBe('function')
    expect(StateError.prototype).toBeInstanceOf(Error)
  })
})
