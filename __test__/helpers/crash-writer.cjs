// Child process of the crash tests: opens a file store and writes until it is killed, printing
// one line per acknowledged write ("set <key> <n>" / "inc <n>" / "del <key>") only after its
// promise resolved. The parent kills it with SIGKILL and checks every printed write survived.
'use strict'
const { StateManager } = require(process.argv[2])
const [dir, sync] = [process.argv[3], process.argv[4]]

async function main() {
  const state = await StateManager.open({ adapter: 'file', path: dir, sync, compactMinBytes: 64 * 1024 })
  process.stdout.write('ready\n')
  for (let n = 1; ; n++) {
    const key = `k${n % 50}`
    await state.set('crash', key, { n, pad: 'x'.repeat(n % 200) })
    process.stdout.write(`set ${key} ${n}\n`)
    const { new_value } = await state.update('counters', 'acked', [{ type: 'increment', path: 'count', by: 1 }])
    process.stdout.write(`inc ${new_value.count}\n`)
    if (n % 7 === 0) {
      const gone = `k${(n + 25) % 50}`
      await state.delete('crash', gone)
      process.stdout.write(`del ${gone}\n`)
    }
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`)
  process.exit(1)
})
