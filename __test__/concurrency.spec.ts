// Atomicity under concurrency: many calls in flight at once (Promise.all) never lose an
// update, never tear a read, and let exactly one compare-and-set win.
import { afterEach, describe, expect, it } from 'vitest'
import { StateError, type StateManager } from '../index.js'
import { closeManagers, freshManager } from './helpers/managers'

afterEach(closeManagers)

/** A small deterministic generator, so that a failing interleaving can be replayed. */
function seededRandom(seed: number): () => number {
  let x = seed >>> 0
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    return x / 2 ** 32
  }
}

describe('concurrent increments', () => {
  it('10,000 concurrent increments of one key give exactly 10,000', async () => {
    const state = freshManager()
    const results = await Promise.all(
      Array.from({ length: 10_000 }, () => state.update('counters', 'hits', [{ type: 'increment', path: 'count', by: 1 }])),
    )
    expect(await state.get('counters', 'hits')).toEqual({ count: 10_000 })
    // Each update saw a distinct predecessor: the results form the chain 0 -> 1 -> ... -> 10,000.
    const after = results.map((result) => result.new_value.count).sort((a, b) => a - b)
    expect(after).toEqual(Array.from({ length: 10_000 }, (_, index) => index + 1))
    for (const result of results) expect(result.new_value.count - (result.old_value?.count ?? 0)).toBe(1)
  })

  it('concurrent increments across 100 keys in several groups are all exact', async () => {
    const state = freshManager()
    const groups = ['alpha', 'beta', 'gamma', 'delta']
    const keysPerGroup = 25
    const incrementsPerKey = 40
    const random = seededRandom(7)
    const calls: Array<[string, string, number]> = []
    for (const group of groups) {
      for (let k = 0; k < keysPerGroup; k++) {
        for (let i = 0; i < incrementsPerKey; i++) calls.push([group, `key-${k}`, k + 1])
      }
    }
    // Shuffle so that calls on one key interleave with calls on every other key.
    for (let i = calls.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      ;[calls[i], calls[j]] = [calls[j], calls[i]]
    }
    await Promise.all(
      calls.map(([group, key, by]) =>
        state.update(group, key, [
          { type: 'increment', path: 'total', by },
          { type: 'increment', path: 'calls', by: 1 },
        ]),
      ),
    )
    expect(await state.listGroups()).toEqual([...groups].sort())
    for (const group of groups) {
      const entries = await state.entries(group)
      expect(entries).toHaveLength(keysPerGroup)
      for (let k = 0; k < keysPerGroup; k++) {
        expect(await state.get(group, `key-${k}`)).toEqual({ total: (k + 1) * incrementsPerKey, calls: incrementsPerKey })
      }
    }
  })

  it('concurrent increments and decrements of one field net out exactly', async () => {
    const state = freshManager()
    await state.set('g', 'k', { n: 1000 })
    await Promise.all(
      Array.from({ length: 4000 }, (_, index) =>
        state.update('g', 'k', [{ type: index % 2 === 0 ? 'increment' : 'decrement', path: 'n', by: index % 4 === 0 ? 3 : 1 }]),
      ),
    )
    // 2000 increments (1000 by 3, 1000 by 1) and 2000 decrements by 1.
    expect(await state.get('g', 'k')).toEqual({ n: 1000 + 3000 + 1000 - 2000 })
  })
})

describe('concurrent sets, deletes and reads', () => {
  it('never throw and end in a state every reading method agrees on', async () => {
    const state = freshManager()
    const random = seededRandom(42)
    const groups = ['left', 'right']
    const keys = Array.from({ length: 20 }, (_, index) => `k${index}`)
    const written = new Map<string, Set<number>>() // `${group}/${key}` -> sequence numbers written there
    const replaced: number[] = [] // sequence numbers reported back as an old or deleted value
    const reads: Array<Promise<void>> = []
    const calls: Array<Promise<unknown>> = []

    const checkValue = (group: string, key: string, value: any) => {
      if (value === null) return
      expect(value.group).toBe(group)
      expect(value.key).toBe(key)
      expect(written.get(`${group}/${key}`)?.has(value.seq)).toBe(true)
    }

    for (let seq = 0; seq < 4000; seq++) {
      const group = groups[Math.floor(random() * groups.length)]
      const key = keys[Math.floor(random() * keys.length)]
      const roll = random()
      if (roll < 0.45) {
        const slot = `${group}/${key}`
        if (!written.has(slot)) written.set(slot, new Set())
        written.get(slot)!.add(seq)
        calls.push(
          state.set(group, key, { group, key, seq, payload: [seq, { nested: seq }] }).then((result) => {
            expect(result.new_value.seq).toBe(seq)
            if (result.old_value !== null) {
              checkValue(group, key, result.old_value)
              replaced.push(result.old_value.seq)
            }
          }),
        )
      } else if (roll < 0.65) {
        calls.push(
          state.delete(group, key).then((removed: any) => {
            if (removed !== null) {
              checkValue(group, key, removed)
              replaced.push(removed.seq)
            }
          }),
        )
      } else if (roll < 0.85) {
        reads.push(state.get(group, key).then((value) => checkValue(group, key, value)))
      } else if (roll < 0.95) {
        reads.push(
          state.entries(group).then((entries) => {
            expect(new Set(entries.map((entry: any) => entry.key)).size).toBe(entries.length)
            for (const entry of entries) checkValue(group, entry.key, entry.value)
          }),
        )
      } else {
        reads.push(
          state.listGroups().then((names) => {
            for (const name of names) expect(groups).toContain(name)
          }),
        )
      }
    }

    await Promise.all([...calls, ...reads])

    // Every value written was either replaced exactly once (by a later set or a delete) or is
    // still stored, as in some serial order of the calls.
    const final = new Map<string, number>()
    for (const group of groups) {
      const entries = await state.entries(group)
      expect(await state.keys(group)).toEqual(entries.map((entry: any) => entry.key))
      expect(await state.getGroup(group)).toEqual(entries.map((entry: any) => entry.value))
      for (const entry of entries) {
        checkValue(group, entry.key, entry.value)
        expect(await state.get(group, entry.key)).toEqual(entry.value)
        final.set(`${group}/${entry.key}`, entry.value.seq)
      }
      for (const key of keys) {
        if (!final.has(`${group}/${key}`)) expect(await state.get(group, key)).toBeNull()
      }
    }
    expect(await state.listGroups()).toEqual(groups.filter((group) => keys.some((key) => final.has(`${group}/${key}`))).sort())
    const outcomes = [...replaced, ...final.values()].sort((a, b) => a - b)
    const allWritten = [...written.values()].flatMap((seqs) => [...seqs]).sort((a, b) => a - b)
    expect(outcomes).toEqual(allWritten)
  })
})

describe('writes of every kind in flight at once', () => {
  // Hundreds of calls started without awaiting any (the Redis store sends such calls to the
  // server in batches): each key's calls, reads included, run in the order they were made, a
  // clear after every write made before it and before every call made after it, and a read of
  // a whole group sees the writes made before it and none made after, so every result and the
  // final items are those of the same calls made one at a time, on a store of their own.
  it('give per key exactly the results of the same calls awaited one at a time', async () => {
    const random = seededRandom(1234)
    const groups = ['north', 'south', 'east']
    const keys = Array.from({ length: 15 }, (_, index) => `k${index}`)
    type Call = (state: StateManager) => Promise<unknown>
    const plan: Call[] = []
    for (let seq = 0; seq < 900; seq++) {
      const group = groups[Math.floor(random() * groups.length)]
      const key = keys[Math.floor(random() * keys.length)]
      const roll = random()
      if (roll < 0.35) plan.push((state) => state.set(group, key, { seq, tags: [seq % 7], empty: {} }))
      else if (roll < 0.75) {
        plan.push((state) =>
          state.update(group, key, [
            { type: 'increment', path: 'count', by: 1 },
            { type: 'set', path: 'last', value: seq },
          ]),
        )
      } else if (roll < 0.89) plan.push((state) => state.delete(group, key))
      else if (roll < 0.9) plan.push((state) => state.clear(group))
      else if (roll < 0.92) plan.push((state) => state.entries(group))
      else plan.push((state) => state.get(group, key))
    }
    const concurrent = freshManager()
    const oneAtATime = freshManager()
    const results = await Promise.all(plan.map((call) => call(concurrent)))
    const expected: unknown[] = []
    for (const call of plan) expected.push(await call(oneAtATime))
    // Calls of different keys in flight together may commit in either order, and the order of a
    // group's keys is that of their commits: compare a group's items by key.
    type Entries = Array<{ key: string; value: unknown }>
    const byKey = (entries: Entries) => [...entries].sort((a, b) => (a.key < b.key ? -1 : 1))
    const comparable = (result: unknown) => (Array.isArray(result) ? byKey(result as Entries) : result)
    expect(results.map(comparable)).toEqual(expected.map(comparable))
    for (const group of groups) expect(byKey(await concurrent.entries(group))).toEqual(byKey(await oneAtATime.entries(group)))
  })
})

describe('compare-and-set', () => {
  it('lets exactly one of 100 concurrent claimers move a job from pending to claimed', async () => {
    const state = freshManager()
    await state.set('jobs', 'job-1', { status: 'pending', claimedBy: null })
    const attempts = await Promise.allSettled(
      Array.from({ length: 100 }, (_, claimer) =>
        state.update('jobs', 'job-1', [
          { type: 'test', path: 'status', value: 'pending' },
          { type: 'set', path: 'status', value: 'claimed' },
          { type: 'set', path: 'claimedBy', value: claimer },
        ]),
      ),
    )
    const winners = attempts.flatMap((attempt, claimer) => (attempt.status === 'fulfilled' ? [claimer] : []))
    expect(winners).toHaveLength(1)
    const losers = attempts.filter((attempt): attempt is PromiseRejectedResult => attempt.status === 'rejected')
    expect(losers).toHaveLength(99)
    for (const loser of losers) {
      expect(loser.reason).toBeInstanceOf(StateError)
      expect(loser.reason.code).toBe('test.failed')
      expect(loser.reason.opIndex).toBe(0)
    }
    const winner = attempts[winners[0]] as PromiseFulfilledResult<any>
    expect(winner.value).toEqual({
      new_value: { status: 'claimed', claimedBy: winners[0] },
      old_value: { status: 'pending', claimedBy: null },
    })
    expect(await state.get('jobs', 'job-1')).toEqual({ status: 'claimed', claimedBy: winners[0] })
  })

  it('a read-then-CAS retry loop by 50 concurrent workers applies every worker exactly once', async () => {
    const state = freshManager()
    await state.set('docs', 'd1', { version: 0, log: [] })
    let conflicts = 0
    const worker = async (id: number) => {
      for (;;) {
        const current = await state.get('docs', 'd1')
        try {
          await state.update('docs', 'd1', [
            { type: 'test', path: 'version', value: current.version },
            { type: 'increment', path: 'version', by: 1 },
            { type: 'append', path: 'log', value: id },
          ])
          return
        } catch (err: any) {
          expect(err.code).toBe('test.failed')
          conflicts++
        }
      }
    }
    await Promise.all(Array.from({ length: 50 }, (_, id) => worker(id)))
    const final = await state.get('docs', 'd1')
    expect(final.version).toBe(50)
    expect([...final.log].sort((a: number, b: number) => a - b)).toEqual(Array.from({ length: 50 }, (_, id) => id))
    // Only the first worker can have succeeded without a conflict if all 50 started together.
    expect(conflicts).toBeGreaterThan(0)
  })
})
