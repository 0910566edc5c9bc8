// A separate Node process using stepstate on Redis, for the cross-process specs of
// __test__/redis.spec.ts. Started with child_process.fork; the parent sends it commands
// `{ id, command, args }` over IPC and gets `{ id, result }` or `{ id, error: { code, message } }`
// back. Every change event a listener of this process sees is sent to the parent at once as
// `{ event, at }` (`at`: Date.now() when it arrived), in the order the listener saw them (IPC
// keeps a process's messages in order).
'use strict'
const path = require('node:path')
const { StateManager } = require(path.join(__dirname, '..', '..', 'index.js'))

let state = null

function errorOf(err) {
  return { code: err && err.code, message: String(err && err.message) }
}

/** Runs `task(i)` for i in [0, count) with at most `inFlight` of them pending at once. */
async function pooled(count, inFlight, task) {
  let next = 0
  const lane = async () => {
    while (next < count) {
      const i = next
      next += 1
      await task(i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane))
}

const commands = {
  /** `StateManager.open(options)`. */
  async open(options) {
    state = await StateManager.open(options)
  },

  /** Sends every change event matching `filter` to the parent. */
  listen(filter) {
    state.onChange((event) => process.send({ event, at: Date.now() }), filter)
  },

  /** `count` increments of `field` in one item, `inFlight` at a time; resolves with how many
   *  resolved and the distinct counts they produced. */
  async increments({ group, key, count, inFlight }) {
    const after = []
    await pooled(count, inFlight, async () => {
      const result = await state.update(group, key, [{ type: 'increment', path: 'count', by: 1 }])
      after.push(result.new_value.count)
    })
    return after
  },

  /**
   * Races with other processes on the same keys: `rounds` calls, each a `set` (of a value no one
   * else writes: `${tag}-${i}`) or a `delete` of one of `keys`, chosen by a seeded generator,
   * `inFlight` at a time. Resolves with what each call returned.
   */
  async setDeleteRace({ group, keys, rounds, inFlight, tag, seed }) {
    let x = seed >>> 0
    const random = () => {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0
      return x / 2 ** 32
    }
    const plan = Array.from({ length: rounds }, () => ({
      key: keys[Math.floor(random() * keys.length)],
      del: random() < 0.4,
    }))
    const records = []
    await pooled(rounds, inFlight, async (i) => {
      const { key, del } = plan[i]
      if (del) {
        const old = await state.delete(group, key)
        records.push({ op: 'delete', key, old })
      } else {
        const value = `${tag}-${i}`
        const result = await state.set(group, key, value)
        records.push({ op: 'set', key, value, old: result.old_value })
      }
    })
    return records
  },

  /**
   * Writes each of `keys` `perKey` times, the value `{ n }` with n = 1, 2, ... (by `update` for
   * odd n, `set` for even; one write of a key at a time, the keys interleaved), then deletes
   * each once, waiting `pauseMs` (default 0) after each write of a key. A call that fails (the connection was
   * killed under it) is retried only when the store shows it was not committed, so every
   * committed change happens exactly once. Resolves with how many calls failed.
   */
  async updateSequence({ group, keys, perKey, pauseMs = 0 }) {
    let failures = 0
    const settle = async (attempt, committed) => {
      for (;;) {
        try {
          await attempt()
          return
        } catch (err) {
          failures += 1
          if (err.code !== 'BACKEND_UNAVAILABLE') throw err
          for (;;) {
            try {
              if (await committed()) return
              break
            } catch {
              await new Promise((resolve) => setTimeout(resolve, 20))
            }
          }
        }
      }
    }
    await Promise.all(
      keys.map(async (key) => {
        for (let n = 1; n <= perKey; n++) {
          await settle(
            () => (n % 2 === 0 ? state.set(group, key, { n }) : state.update(group, key, [{ type: 'set', path: 'n', value: n }])),
            async () => (await state.get(group, key))?.n === n,
          )
          if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs))
        }
        await settle(
          () => state.delete(group, key),
          async () => (await state.get(group, key)) === null,
        )
      }),
    )
    return failures
  },

  /** `state.set(group, key, value, opts)`. */
  async set({ group, key, value, opts }) {
    return state.set(group, key, value, opts)
  },

  /** `state.get(group, key)`. */
  async get({ group, key }) {
    return state.get(group, key)
  },

  async close() {
    await state.close()
    state = null
  },
}

process.on('message', async ({ id, command, args }) => {
  try {
    const result = await commands[command](args)
    process.send({ id, result: result === undefined ? null : result })
  } catch (err) {
    process.send({ id, error: errorOf(err) })
  }
})

// Change events never keep a process alive by themselves: the IPC channel does, until the
// parent disconnects or kills it.
process.send({ ready: true })
