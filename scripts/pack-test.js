#!/usr/bin/env node
// The package as a user gets it: `npm pack`, then `npm install <tarball>` into a scratch
// project in the OS temp directory with cargo and rustc hidden from the PATH (so the addon must
// come from the tarball, not from a build), offline (the package has no runtime dependencies),
// and its install script allowed in the project's `allowScripts` (so it runs, finds the shipped binary loads, and builds
// nothing). Then a smoke script under `require` and one under `import`: a memory store, a file
// store, an update, an event, and `stepstate/testing`. Run by `npm test` (scripts/test.js);
// prints `pack test: ok` or exits non-zero. `--keep` leaves the scratch directory behind.
'use strict'
const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const root = path.join(__dirname, '..')

/** The PATH without any directory that holds cargo or rustc; node and npm get a directory of
 *  their own links if they shared one with them. */
function pathWithoutRust(scratch) {
  const hasRust = (dir) => ['cargo', 'rustc', 'rustup'].some((name) => fs.existsSync(path.join(dir, name)))
  const dirs = (process.env.PATH || '').split(path.delimiter).filter((dir) => dir && !hasRust(dir))
  const nodeDir = path.dirname(process.execPath)
  if (hasRust(nodeDir)) {
    const shims = path.join(scratch, 'bin')
    fs.mkdirSync(shims)
    for (const name of ['node', 'npm', 'npx']) {
      if (fs.existsSync(path.join(nodeDir, name))) fs.symlinkSync(path.join(nodeDir, name), path.join(shims, name))
    }
    dirs.unshift(shims)
  }
  return dirs.join(path.delimiter)
}

function run(command, args, options) {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options })
}

const smokeCommon = `
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stepstate-smoke-'))
  try {
    const memory = new StateManager()
    const seen = []
    memory.onChange((event) => seen.push(event.event_type), { group: 'orders' })
    await memory.set('orders', 'o1', { status: 'pending', payments: 0 })
    const updated = await memory.update('orders', 'o1', [
      { type: 'test', path: 'status', value: 'pending' },
      { type: 'set', path: 'status', value: 'paid' },
      { type: 'increment', path: 'payments', by: 1 },
    ])
    if (updated.new_value.status !== 'paid' || updated.new_value.payments !== 1) throw new Error('update: ' + JSON.stringify(updated))
    await new Promise((resolve) => setTimeout(resolve, 20))
    if (seen.join() !== 'state:created,state:updated') throw new Error('events: ' + seen.join())
    await memory.close()
    const file = await StateManager.open({ adapter: 'file', path: path.join(dir, 'store') })
    await file.set('g', 'k', 42)
    await file.close()
    const reopened = await StateManager.open({ adapter: 'file', path: path.join(dir, 'store') })
    if ((await reopened.get('g', 'k')) !== 42) throw new Error('file store lost its value')
    await reopened.close()
    const t = createTestState()
    await t.state.set('g', 'k', 1)
    if ((await t.values('g')).k !== 1) throw new Error('stepstate/testing')
    await t.close()
    let code
    try { await new StateManager().get('', 'k') } catch (err) { code = err.code }
    if (code !== 'INVALID_ARGUMENT' || !(StateError.prototype instanceof Error)) throw new Error('errors: ' + code)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
`

const smokeCjs = `'use strict'
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { StateManager, StateError } = require('stepstate')
const { createTestState } = require('stepstate/testing')
;(async () => {
${smokeCommon}
  console.log('require: ok')
})().catch((err) => { console.error(err); process.exit(1) })
`

const smokeMjs = `import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { StateManager, StateError } from 'stepstate'
import { createTestState } from 'stepstate/testing'
${smokeCommon}
console.log('import: ok')
`

function main() {
  const started = Date.now()
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'stepstate-pack-'))
  try {
    const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', scratch], { cwd: root }))
    const tarball = path.join(scratch, packed[0].filename)
    const files = new Set(packed[0].files.map((file) => file.path))
    for (const needed of ['binding.js', 'stepstate.linux-x64-gnu.node', 'index.js', 'index.mjs', 'index.d.ts', 'testing.js', 'scripts/install.js']) {
      if (!files.has(needed)) throw new Error(`the tarball lacks ${needed}`)
    }
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
    if (Object.keys(manifest.dependencies || {}).length > 0) {
      throw new Error(`the package has runtime dependencies: ${Object.keys(manifest.dependencies).join(', ')}`)
    }
    const app = path.join(scratch, 'app')
    fs.mkdirSync(app)
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', private: true, version: '1.0.0', allowScripts: { [`file:${tarball}`]: true } }))
    fs.writeFileSync(path.join(app, 'smoke.cjs'), smokeCjs)
    fs.writeFileSync(path.join(app, 'smoke.mjs'), smokeMjs)
    const env = {
      ...process.env,
      PATH: pathWithoutRust(scratch),
      CARGO: '/nonexistent/cargo', // in case anything looks it up this way
      npm_config_offline: 'true',
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
      npm_config_cache: path.join(scratch, 'npm-cache'), // nothing from the user's cache
    }
    delete env.CARGO_TARGET_DIR
    for (const name of Object.keys(env)) if (name.startsWith('npm_package_') || name.startsWith('npm_lifecycle_')) delete env[name]
    const install = spawnSync('npm', ['install', '--foreground-scripts', tarball], { cwd: app, env, encoding: 'utf8' })
    const said = `${install.stdout}${install.stderr}`
    if (install.status !== 0) throw new Error(`npm install failed:\n${said}`)
    if (/warn/i.test(said)) throw new Error(`npm install warned:\n${said}`)
    if (!said.includes('node scripts/install.js')) throw new Error(`the install script did not run:\n${said}`)
    if (fs.existsSync(path.join(app, 'node_modules', 'stepstate', 'target'))) throw new Error('the install built the addon from source')
    process.stdout.write(run(process.execPath, ['smoke.cjs'], { cwd: app, env }))
    process.stdout.write(run(process.execPath, ['smoke.mjs'], { cwd: app, env }))
    console.log(`pack test: ok (${packed[0].filename}, ${(packed[0].size / 1e6).toFixed(1)} MB, ${((Date.now() - started) / 1000).toFixed(1)} s)`)
  } catch (err) {
    console.error(`pack test failed: ${err.message}`)
    if (err.stdout) console.error(err.stdout)
    if (err.stderr) console.error(err.stderr)
    process.exitCode = 1
  } finally {
    if (process.argv.includes('--keep')) console.log(`scratch directory kept: ${scratch}`)
    else fs.rmSync(scratch, { recursive: true, force: true })
  }
}

main()
