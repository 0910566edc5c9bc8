// Child process of the crash tests: opens a file store and writes until it is killed, printing
// one line per acknowledged write only after its promise resolved: "set <key> <n>",
// "inc <count> <n>", "del <key> <n>" for round n. The parent kills it with SIGKILL and checks
// that every printed write survived (the one write in flight at the kill may or may not have).
'use strict'
const { writeSync } = require('node:fs')
const { StateManager } = require(process.argv[2])

// Written synchronously: process.stdout.write keeps lines in memory when the pipe is full, and
// a line still in memory at the kill would be an acknowledgement the parent never sees.
const ack = (line) => writeSync(1, `${line}\n`)
const [dir, sync] = [process.argv[3], process.argv[4]]

async function main() {
  const state = await StateManager.open({ adapter: 'file', path: dir, sync, compactMinBytes: 64 * 1024 })
  ack('ready')
  for (let n = 1; ; n++) {
    const key = `k${n % 50}`
    await state.set('crash', key, { n, pad: 'x'.repeat(n % 200) })
    ack(`set ${key} ${n}`)
    const { new_value } = await state.update('counters', 'acked', [{ type: 'increment', path: 'count', by: 1 }])
    ack(`inc ${new_value.count} ${n}`)
    if (n % 7 === 0) {
      const gone = `k${(n + 25) % 50}`
      await state.delete('crash', gone)
      ack(`del ${gone} ${n}`)
    }
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`)
  process.exit(1)
})
