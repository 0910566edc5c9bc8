// Child process of the CLI specs: opens a file store (taking its lock), stores the items given
// as JSON on the command line, prints "ready" and holds the store until stdin closes. Under sync: "always" every
// file is as it stays once "ready" is printed, so the spec can tell that readers changed nothing.
'use strict'
const { writeSync } = require('node:fs')
const { StateManager } = require(process.argv[2])

async function main() {
  const state = await StateManager.open({ adapter: 'file', path: process.argv[3], sync: 'always' })
  for (const { group, key, value } of JSON.parse(process.argv[4])) await state.set(group, key, value)
  writeSync(1, 'ready\n')
  process.stdin.resume()
  process.stdin.once('end', async () => {
    await state.close()
    process.exit(0)
  })
}

main().catch((err) => {
  writeSync(2, `${err.stack}\n`)
  process.exit(1)
})
