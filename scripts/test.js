#!/usr/bin/env node
// `npm test`: every test of the project, in order of cost, stopping at the first failing stage:
//   1. the Rust engine's own tests (`cargo test -p stepstate-core`),
//   2. the addon build (release; a no-op when it is up to date, so CI builds it once),
//   3. the type tests of index.d.ts (`tsc -p __test__/types`: what must and must not compile),
//   4. the vitest specs of the public API, all on that one release build,
//   5. the conformance pass: the same specs again with every manager a file store
//      (STEPSTATE_TEST_ADAPTER=file), since the file store must behave exactly like memory.
'use strict'
const { spawnSync } = require('node:child_process')
const path = require('node:path')
const { build } = require('./install.js')

const root = path.join(__dirname, '..')
const bin = (name) => path.join(root, 'node_modules', '.bin', name)

function stage(title, command, args, env = {}) {
  console.log(`\n== ${title}: ${[command, ...args].join(' ')}`)
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } })
  if (result.status !== 0) {
    console.error(`\n== ${title} failed (exit ${result.status ?? result.signal})`)
    process.exit(result.status || 1)
  }
}

stage('rust engine tests', 'cargo', ['test', '-p', 'stepstate-core', '--quiet'])
console.log('\n== addon (release build)')
build()
stage('type tests', bin('tsc'), ['-p', '__test__/types'])
stage('javascript specs', bin('vitest'), ['run'])
const conformance = ['methods', 'update', 'errors', 'concurrency', 'events', 'ttl'].map((name) => `__test__/${name}.spec.ts`)
stage('conformance: the same specs on the file store', bin('vitest'), ['run', ...conformance], {
  STEPSTATE_TEST_ADAPTER: 'file',
})
console.log('\n== all test stages passed')
