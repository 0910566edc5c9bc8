// `npx stepstate`: the real bin spawned against real store directories and a private
// redis-server on a free loopback port. Every command, the --json shapes, the exit codes, a
// file store held by another process (reading commands work and change no byte), a corrupt
// store, and export then import giving the same state.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, openSync, readSync, writeSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
// @ts-ignore: a plain ESM helper without typings (the specs are not type-checked by tsc)
import { startRedis } from './helpers/redis-server.mjs'

const ROOT = resolve(__dirname, '..')
const BIN = join(ROOT, 'bin', 'stepstate.js')

type Run = { code: number | null; stdout: string; stderr: string }

function run(args: string[], options: { cwd?: string; input?: string } = {}): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd ?? ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.once('error', fail)
    child.once('close', (code) => done({ code, stdout, stderr }))
    child.stdin.end(options.input ?? '')
  })
}

const dirs: string[] = []
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'stepstate-cli-'))
  dirs.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

/** Every file of a directory: its bytes and modification time. */
function snapshotOf(dir: string) {
  const files: Record<string, { bytes: string; mtimeMs: number }> = {}
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name)
    files[name] = { bytes: readFileSync(path).toString('base64'), mtimeMs: statSync(path).mtimeMs }
  }
  return files
}

const json = (r: Run) => JSON.parse(r.stdout)

/** Stores a few items whose insertion order is not the order of their keys. */
async function fill(store: string[]) {
  for (const [group, key, value] of [
    ['orders', 'o2', '{"status":"new","total":5}'],
    ['orders', 'o1', '{"status":"paid","items":[1,2]}'],
    ['orders', 'o3', 'null'],
    ['users', 'u1', '"Ada"'],
    ['users', 'u:2/x', '{"nested":{"deep":[true,false,0,""]}}'],
  ]) {
    expect((await run(['set', group, key, value, ...store])).code).toBe(0)
  }
  // Delete then set moves o2 to the end.
  expect((await run(['del', 'orders', 'o2', ...store])).code).toBe(0)
  expect((await run(['set', 'orders', 'o2', '{"status":"again"}', ...store])).code).toBe(0)
}

describe('help and usage', () => {
  it('documents every command and the exit codes, and exits 0', async () => {
    const r = await run(['--help'])
    expect(r.code).toBe(0)
    for (const command of ['groups', 'keys', 'get', 'list', 'set', 'update', 'del', 'clear', 'export', 'import', 'stats', 'check', 'watch']) {
      expect(r.stdout).toContain(`  ${command}`)
      const help = await run([command, '--help'])
      expect(help.code).toBe(0)
      expect(help.stdout).toContain(`Usage: stepstate ${command}`)
      expect(help.stdout).toContain('Exit codes:')
    }
    expect(r.stdout).toMatch(/3 +locked/)
  })

  it('exits 2 for an unknown command, an unknown option, a missing argument and JSON that does not parse', async () => {
    const dir = tempDir()
    expect((await run(['frobnicate'], { cwd: dir })).code).toBe(2)
    expect((await run(['groups', '--nope'], { cwd: dir })).code).toBe(2)
    expect((await run(['get', 'g'], { cwd: dir })).code).toBe(2)
    const bad = await run(['set', 'g', 'k', '{oops', '--json'], { cwd: dir })
    expect(bad.code).toBe(2)
    expect(JSON.parse(bad.stderr).error).toMatchObject({ code: 'USAGE', exit: 2 })
    expect((await run([], { cwd: dir })).code).toBe(2)
    expect((await run(['groups', '--path', dir, '--url', 'redis://127.0.0.1:1'])).code).toBe(2)
    // Nothing was created by any of them.
    expect(readdirSync(dir)).toEqual([])
  })
})

describe('a file store', () => {
  it('runs every command, with --json shapes and exit codes', async () => {
    const dir = tempDir()
    const store = ['--path', join(dir, 'state')]
    expect((await run(['groups', ...store])).code).toBe(1) // no store yet
    await fill(store)

    expect(json(await run(['groups', '--json', ...store]))).toEqual([
      { group: 'orders', items: 3 },
      { group: 'users', items: 2 },
    ])
    const table = await run(['groups', ...store])
    expect(table.stdout).toMatch(/^GROUP +ITEMS\norders +3\nusers +2\n$/)
    expect(json(await run(['keys', 'orders', '--json', ...store]))).toEqual(['o1', 'o3', 'o2'])
    expect((await run(['keys', 'orders', ...store])).stdout).toBe('o1\no3\no2\n')
    expect(json(await run(['keys', 'nothing', '--json', ...store]))).toEqual([])
    expect(json(await run(['get', 'orders', 'o1', '--json', ...store]))).toEqual({ status: 'paid', items: [1, 2] })
    expect((await run(['get', 'orders', 'o1', ...store])).stdout).toBe(JSON.stringify({ status: 'paid', items: [1, 2] }, null, 2) + '\n')
    // A stored null is found; an absent key is not.
    const nullValue = await run(['get', 'orders', 'o3', '--json', ...store])
    expect([nullValue.code, nullValue.stdout]).toEqual([0, 'null\n'])
    const missing = await run(['get', 'orders', 'nope', '--json', ...store])
    expect(missing.code).toBe(1)
    expect(missing.stdout).toBe('')
    expect(JSON.parse(missing.stderr).error).toMatchObject({ code: 'NOT_FOUND', exit: 1 })
    expect(json(await run(['list', 'users', '--json', ...store]))).toEqual([
      { key: 'u1', value: 'Ada' },
      { key: 'u:2/x', value: { nested: { deep: [true, false, 0, ''] } } },
    ])
    expect((await run(['list', 'users', ...store])).stdout).toMatch(/^KEY +VALUE\nu1 +"Ada"\nu:2\/x +\{"nested"/)

    const set = await run(['set', 'orders', 'o1', '{"status":"shipped"}', '--json', ...store])
    expect(json(set)).toEqual({ new_value: { status: 'shipped' }, old_value: { status: 'paid', items: [1, 2] } })
    const updated = await run(['update', 'orders', 'o1', '[{"type":"increment","path":"n","by":2}]', '--json', ...store])
    expect(json(updated)).toEqual({ new_value: { status: 'shipped', n: 2 }, old_value: { status: 'shipped' } })
    const failed = await run(['update', 'orders', 'o1', '[{"type":"test","path":"status","value":"new"},{"type":"set","path":"x","value":1}]', '--json', ...store])
    expect(failed.code).toBe(6)
    expect(JSON.parse(failed.stderr).error).toMatchObject({ code: 'test.failed', exit: 6 })
    expect(json(await run(['get', 'orders', 'o1', '--json', ...store]))).toEqual({ status: 'shipped', n: 2 })
    expect((await run(['update', 'orders', 'o1', '{"not":"an array"}', ...store])).code).toBe(2)

    expect(json(await run(['del', 'orders', 'o3', '--json', ...store]))).toEqual({ deleted: null })
    expect((await run(['del', 'orders', 'o3', ...store])).code).toBe(1)
    expect(json(await run(['clear', 'users', '--json', ...store]))).toEqual({ group: 'users', cleared: 2 })

    const stats = json(await run(['stats', '--json', ...store]))
    expect(stats).toMatchObject({ store: 'file', groups: 1, items: 2, heldBy: null, lastCompaction: null })
    expect(stats.bytes).toBe(
      Buffer.byteLength('o1' + JSON.stringify({ status: 'shipped', n: 2 }) + 'o2' + JSON.stringify({ status: 'again' })),
    )
    expect(stats.logBytes).toBeGreaterThan(0)
    expect(stats.files.map((f: { name: string }) => f.name)).toEqual(['log-0.log'])
    expect((await run(['stats', ...store])).stdout).toMatch(/items +2\n/)

    const check = await run(['check', '--json', ...store])
    expect(check.code).toBe(0)
    expect(json(check)).toMatchObject({ ok: true, damage: null, files: [{ kind: 'log', records: expect.any(Number) }] })
    expect((await run(['check', ...store])).stdout).toContain('ok: 1 files')
  })

  it('gives the same state after export then import into an empty store, order included', async () => {
    const dir = tempDir()
    const from = ['--path', join(dir, 'from')]
    const to = ['--path', join(dir, 'to')]
    await fill(from)
    const exported = await run(['export', ...from])
    expect(exported.code).toBe(0)
    const lines = exported.stdout.trim().split('\n').map((line) => JSON.parse(line))
    expect(lines.map((l) => `${l.group}/${l.key}`)).toEqual(['orders/o1', 'orders/o3', 'orders/o2', 'users/u1', 'users/u:2/x'])
    const file = join(dir, 'dump.jsonl')
    expect((await run(['export', '--out', file, ...from])).code).toBe(0)
    expect(readFileSync(file, 'utf8')).toBe(exported.stdout)
    const imported = await run(['import', file, '--json', ...to])
    expect([imported.code, json(imported)]).toEqual([0, { imported: 5, rejected: [] }])
    expect((await run(['export', ...to])).stdout).toBe(exported.stdout)
    expect((await run(['export', 'users', ...to])).stdout).toBe(lines.slice(3).map((l) => JSON.stringify(l) + '\n').join(''))
    // From stdin too.
    const again = ['--path', join(dir, 'again')]
    expect((await run(['import', '-', ...again], { input: exported.stdout })).code).toBe(0)
    expect((await run(['export', ...again])).stdout).toBe(exported.stdout)
  })

  it('imports each line all or nothing and reports the rejected ones', async () => {
    const dir = tempDir()
    const store = ['--path', join(dir, 'state')]
    const file = join(dir, 'in.jsonl')
    writeFileSync(
      file,
      [
        '{"group":"g","key":"a","value":1}',
        '{"group":"g","key":"b"',
        '',
        '{"group":"","key":"c","value":3}',
        '[1,2]',
        '{"group":"g","key":"d","value":{"x":[4]}}',
      ].join('\n') + '\n',
    )
    const r = await run(['import', file, '--json', ...store])
    expect(r.code).toBe(6)
    const report = json(r)
    expect(report.imported).toBe(2)
    expect(report.rejected.map((x: { line: number }) => x.line)).toEqual([2, 4, 5])
    expect(report.rejected[1].code).toBe('INVALID_ARGUMENT')
    expect(json(await run(['list', 'g', '--json', ...store]))).toEqual([
      { key: 'a', value: 1 },
      { key: 'd', value: { x: [4] } },
    ])
    expect((await run(['import', join(dir, 'missing.jsonl'), ...store])).code).toBe(1)
  })

  it('held by another process: reading commands work and change no byte; writing ones name the holder', async () => {
    const dir = tempDir()
    const path = join(dir, 'held')
    const items = [
      { group: 'jobs', key: 'j1', value: { step: 1 } },
      { group: 'jobs', key: 'j2', value: [1, 'two'] },
      { group: 'other', key: 'x', value: 'y' },
    ]
    const holder: ChildProcess = spawn(process.execPath, [join(__dirname, 'helpers', 'cli-holder.cjs'), join(ROOT, 'index.js'), path, JSON.stringify(items)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    try {
      await new Promise<void>((ready, fail) => {
        holder.stdout!.on('data', (d) => String(d).includes('ready') && ready())
        holder.once('exit', (code) => fail(new Error(`holder exited with ${code}`)))
      })
      const store = ['--path', path]
      const before = snapshotOf(path)
      const pid = String(holder.pid)

      const groups = await run(['groups', '--json', ...store])
      expect(groups.code).toBe(0)
      expect(json(groups)).toEqual([{ group: 'jobs', items: 2 }, { group: 'other', items: 1 }])
      expect(groups.stderr).toContain(`held by process ${pid}`)
      expect(groups.stderr).toContain('what was on disk at')
      expect(json(await run(['keys', 'jobs', '--json', ...store]))).toEqual(['j1', 'j2'])
      expect(json(await run(['get', 'jobs', 'j2', '--json', ...store]))).toEqual([1, 'two'])
      expect(json(await run(['list', 'other', '--json', ...store]))).toEqual([{ key: 'x', value: 'y' }])
      expect((await run(['export', ...store])).stdout.trim().split('\n')).toEqual(items.map((i) => JSON.stringify(i)))
      expect(json(await run(['stats', '--json', ...store]))).toMatchObject({ groups: 2, items: 3, heldBy: holder.pid })
      const check = await run(['check', '--json', ...store])
      expect([check.code, json(check).ok]).toEqual([0, true])

      for (const args of [
        ['set', 'jobs', 'j3', '1'],
        ['update', 'jobs', 'j1', '[]'],
        ['del', 'jobs', 'j1'],
        ['clear', 'jobs'],
        ['import', '-'],
      ]) {
        const r = await run([...args, ...store], { input: '{"group":"g","key":"k","value":1}\n' })
        expect(r.code, args.join(' ')).toBe(3)
        expect(r.stderr).toContain(`locked by process ${pid}`)
      }
      const watch = await run(['watch', ...store])
      expect(watch.code).toBe(3)
      expect(watch.stderr).toContain('Redis')

      expect(snapshotOf(path)).toEqual(before)
    } finally {
      holder.stdin!.end()
      await new Promise((done) => (holder.exitCode === null ? holder.once('exit', done) : done(null)))
    }
  })

  it('a corrupt store names the file and offset and exits 4, changing nothing', async () => {
    const dir = tempDir()
    const path = join(dir, 'broken')
    const store = ['--path', path]
    await fill(store)
    const log = join(path, 'log-0.log')
    const fd = openSync(log, 'r+')
    const byte = Buffer.alloc(1)
    readSync(fd, byte, 0, 1, 60)
    writeSync(fd, Buffer.from([byte[0] ^ 0xff]), 0, 1, 60)
    closeSync(fd)
    const before = snapshotOf(path)

    for (const args of [['groups'], ['get', 'orders', 'o1'], ['export'], ['stats']]) {
      const r = await run([...args, ...store])
      expect(r.code, args.join(' ')).toBe(4)
      expect(r.stderr).toContain(log)
      expect(r.stderr).toMatch(/offset \d+/)
    }
    const check = await run(['check', '--json', ...store])
    expect(check.code).toBe(4)
    const report = json(check)
    expect(report.ok).toBe(false)
    expect(report.damage.file).toBe(log)
    expect(report.damage.offset).toBeLessThanOrEqual(60)
    expect(report.damage.message).toContain(`offset ${report.damage.offset}`)
    const human = await run(['check', ...store])
    expect(human.code).toBe(4)
    expect(human.stderr).toContain(`${log} at offset ${report.damage.offset}`)
    expect(snapshotOf(path)).toEqual(before)
    // A writing command opens the store (taking the lock, which writes the LOCK file), and
    // gets CORRUPT too, leaving the store's files as they were.
    expect((await run(['set', 'g', 'k', '1', ...store])).code).toBe(4)
    expect(readFileSync(log)).toEqual(Buffer.from(before['log-0.log'].bytes, 'base64'))
  })
})

describe('a Redis store', () => {
  let redis: { url: string; port: number; stop(): Promise<void> }
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })

  it('runs every command, and export then import gives the same state', async () => {
    const store = ['--url', redis.url, '--prefix', 'cli-a:']
    await fill(store)
    expect(json(await run(['groups', '--json', ...store]))).toEqual([
      { group: 'orders', items: 3 },
      { group: 'users', items: 2 },
    ])
    expect(json(await run(['keys', 'orders', '--json', ...store]))).toEqual(['o1', 'o3', 'o2'])
    expect((await run(['get', 'orders', 'o3', '--json', ...store])).stdout).toBe('null\n')
    expect((await run(['get', 'orders', 'none', ...store])).code).toBe(1)
    expect(json(await run(['update', 'orders', 'o1', '[{"type":"append","path":"items","value":3}]', '--json', ...store])).new_value).toEqual({
      status: 'paid',
      items: [1, 2, 3],
    })
    expect(json(await run(['stats', '--json', ...store]))).toMatchObject({ store: 'redis', groups: 2, items: 5 })
    expect((await run(['check', ...store])).code).toBe(2)

    const exported = (await run(['export', ...store])).stdout
    const to = ['--url', redis.url, '--prefix', 'cli-b:']
    expect((await run(['import', '-', ...to], { input: exported })).code).toBe(0)
    expect((await run(['export', ...to])).stdout).toBe(exported)
    // Into a file store too.
    const file = ['--path', join(tempDir(), 'copy')]
    expect((await run(['import', '-', ...file], { input: exported })).code).toBe(0)
    expect((await run(['export', ...file])).stdout).toBe(exported)

    expect(json(await run(['del', 'users', 'u1', '--json', ...to]))).toEqual({ deleted: 'Ada' })
    expect(json(await run(['clear', 'orders', '--json', ...to]))).toEqual({ group: 'orders', cleared: 3 })
    expect(json(await run(['groups', '--json', ...to]))).toEqual([{ group: 'users', items: 1 }])
  })

  it('watch streams the changes other processes make', async () => {
    const store = ['--url', redis.url, '--prefix', 'cli-w:']
    const watcher = spawn(process.execPath, [BIN, 'watch', 'jobs', '--json', ...store], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    watcher.stdout.on('data', (d) => (stdout += d))
    const exited = new Promise<number | null>((done) => watcher.once('close', done))
    await new Promise<void>((ready) => watcher.stderr.on('data', (d) => String(d).includes('watching') && ready()))
    expect((await run(['set', 'jobs', 'j1', '{"a":1}', ...store])).code).toBe(0)
    expect((await run(['set', 'elsewhere', 'e', '1', ...store])).code).toBe(0)
    expect((await run(['del', 'jobs', 'j1', ...store])).code).toBe(0)
    const deadline = Date.now() + 10_000
    while (stdout.trim().split('\n').length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    watcher.kill('SIGINT')
    expect(await exited).toBe(0)
    const events = stdout.trim().split('\n').map((line) => JSON.parse(line))
    expect(events).toMatchObject([
      { event_type: 'state:created', group_id: 'jobs', item_id: 'j1', new_value: { a: 1 } },
      { event_type: 'state:deleted', group_id: 'jobs', item_id: 'j1', old_value: { a: 1 }, new_value: null },
    ])
  })

  it('exits 5 when the Redis server cannot be reached', async () => {
    const down = `redis://127.0.0.1:${redis.port + 1 === 65536 ? 1 : redis.port + 1}`
    const r = await run(['groups', '--url', down, '--timeout', '500', '--json'])
    expect(r.code).toBe(5)
    expect(JSON.parse(r.stderr).error.code).toBe('BACKEND_UNAVAILABLE')
  })
})
