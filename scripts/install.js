#!/usr/bin/env node
// `npm install` hook: makes sure the native addon loads, building it from source (release
// profile) only when no binary for this platform does. The published package carries the
// linux-x64 binary (`stepstate.linux-x64-gnu.node`) beside `binding.js`, so it installs with no
// Rust toolchain there; elsewhere, or when that binary does not load, it needs Rust and nothing
// else (nothing is downloaded):
//   - in a checkout, where the napi CLI (a dev dependency) is installed, `napi build` makes the
//     addon and generates binding.js / binding.d.ts;
//   - in an installed package, which has binding.js but no napi CLI, `cargo build --release`
//     makes the library and it is copied to the file name binding.js loads on this platform.
'use strict'
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')

function loads() {
  try {
    require(path.join(root, 'binding.js'))
    return true
  } catch {
    return false
  }
}

function fail(message, status) {
  console.error(`stepstate: ${message}`)
  process.exit(status || 1)
}

/** The napi CLI's entry script, when it is installed (a checkout with dev dependencies). */
function napiCli() {
  try {
    const manifest = require.resolve('@napi-rs/cli/package.json', { paths: [root] })
    const bin = require(manifest).bin
    return path.join(path.dirname(manifest), typeof bin === 'string' ? bin : bin.napi)
  } catch {
    return null
  }
}

/** The platform part of the addon's file name, as binding.js (napi-rs) spells it. */
function platformSuffix() {
  const { platform, arch } = process
  if (platform === 'win32') return `win32-${arch}-msvc`
  if (platform === 'linux') {
    const glibc = Boolean(process.report?.getReport?.().header?.glibcVersionRuntime)
    const abi = (glibc ? 'gnu' : 'musl') + (arch === 'arm' ? 'eabihf' : '')
    return `linux-${arch}-${abi}`
  }
  return `${platform}-${arch}`
}

/** Builds the cdylib with cargo alone and puts it where binding.js looks for it. */
function buildWithCargo() {
  const result = spawnSync('cargo', ['build', '--release', '-p', 'stepstate-node'], { cwd: root, stdio: 'inherit' })
  if (result.error) fail('no prebuilt addon loads here and cargo was not found: install Rust (https://rustup.rs), then run `npm rebuild stepstate`')
  if (result.status !== 0) fail('building the native addon with cargo failed', result.status)
  const library =
    process.platform === 'win32' ? 'stepstate_node.dll' : process.platform === 'darwin' ? 'libstepstate_node.dylib' : 'libstepstate_node.so'
  const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(root, process.env.CARGO_TARGET_DIR) : path.join(root, 'target')
  fs.copyFileSync(path.join(targetDir, 'release', library), path.join(root, `stepstate.${platformSuffix()}.node`))
}

function build() {
  const cli = napiCli()
  if (cli === null) {
    buildWithCargo()
    return
  }
  const args = [cli, 'build', '--platform', '--release', '--js', 'binding.js', '--dts', 'binding.d.ts']
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' })
  if (result.status !== 0) fail('building the native addon failed (is a Rust toolchain installed? https://rustup.rs)', result.status)
}

if (require.main === module) {
  if (process.argv.includes('--force') || !loads()) build()
}

module.exports = { build }
