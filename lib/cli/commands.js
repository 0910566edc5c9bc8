'use strict'
// The commands of `npx stepstate`. Each has `usage`, `summary`, `help`, `args` (names of its
// positional arguments, `?` when optional) and `run(ctx)`, which writes to ctx.out / ctx.err
// and returns an exit code (or throws: see exit.js).

const fs = require('node:fs')
const readline = require('node:readline')
const { once } = require('node:events')
const native = require('../../binding.js')
const { fromNative } = require('../errors.js')
const { EXIT, CliError, exitCodeOf } = require('./exit.js')
const { table, pretty, compact, bytes, progress } = require('./format.js')
const { describeTarget, requireStoreDir, holderOf, openReader, openManager } = require('./store.js')

/** The JSON argument `text`, or a usage error naming `what`. */
function parseJson(text, what) {
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new CliError(
      EXIT.USAGE,
      `${what} is not JSON (${err.message}); quote it for the shell, e.g. '{"a":1}' or '"text"'`,
    )
  }
}

/** Tells on stderr that a held file store was read from disk without its lock. */
function noteHeld(ctx, reader) {
  if (reader.kind === 'file' && reader.held !== null) {
    const who = reader.held ? `process ${reader.held}` : 'another process'
    ctx.err.write(
      `note: ${describeTarget(ctx.where)} is held by ${who}; showing what was on disk at ` +
        `${reader.readAt.toISOString()} (read without the lock; later writes are not shown)\n`,
    )
  }
}

/** Runs `fn(reader)` over a reader of the store, closing it after. */
async function withReader(ctx, fn) {
  const reader = await openReader(ctx.where)
  try {
    noteHeld(ctx, reader)
    return await fn(reader)
  } finally {
    await reader.close()
  }
}

/** Runs `fn(manager)` over a StateManager of the store, closing it after. */
async function withManager(ctx, fn, { mustExist = false } = {}) {
  if (mustExist && ctx.where.kind === 'file') requireStoreDir(ctx.where)
  const manager = await openManager(ctx.where)
  try {
    return await fn(manager)
  } finally {
    await manager.close()
  }
}

/** The store's items and their bytes (keys and JSON values, UTF-8). */
async function countItems(reader, groups) {
  let items = 0
  let size = 0
  const perGroup = []
  for (const group of groups) {
    const entries = await reader.entries(group)
    let groupBytes = 0
    for (const { key, value } of entries) groupBytes += Buffer.byteLength(key) + Buffer.byteLength(JSON.stringify(value))
    perGroup.push({ group, items: entries.length, bytes: groupBytes })
    items += entries.length
    size += groupBytes
  }
  return { items, bytes: size, perGroup }
}

const commands = {
  groups: {
    args: [],
    summary: 'list the non-empty groups, with their item counts',
    help: 'Lists the groups that hold at least one item, sorted, with how many items each holds.\n--json: [{ "group", "items" }]',
    run: (ctx) =>
      withReader(ctx, async (reader) => {
        const groups = await reader.groups()
        const { perGroup } = await countItems(reader, groups)
        if (ctx.json) ctx.print(compact(perGroup.map(({ group, items }) => ({ group, items }))))
        else if (perGroup.length === 0) ctx.err.write('(no groups)\n')
        else ctx.out.write(table(['GROUP', 'ITEMS'], perGroup.map((g) => [g.group, g.items])))
        return EXIT.OK
      }),
  },

  keys: {
    args: ['group'],
    summary: "list a group's keys in insertion order",
    help: 'Lists the keys of <group> in insertion order, one a line. A group without items lists nothing\n(exit 0: groups exist only while they hold items).\n--json: ["key", ...]',
    run: (ctx, [group]) =>
      withReader(ctx, async (reader) => {
        const keys = (await reader.entries(group)).map((entry) => entry.key)
        if (ctx.json) ctx.print(compact(keys))
        else if (keys.length === 0) ctx.err.write(`(group ${JSON.stringify(group)} has no items)\n`)
        else ctx.out.write(keys.map((key) => key + '\n').join(''))
        return EXIT.OK
      }),
  },

  get: {
    args: ['group', 'key'],
    summary: 'print a value (exit 1 when the key is absent)',
    help: 'Prints the value of <key> in <group>, pretty-printed. Exit 1 when there is no such key.\n--json: the value on one line',
    run: (ctx, [group, key]) =>
      withReader(ctx, async (reader) => {
        const { found, value } = await reader.get(group, key)
        if (!found) throw new CliError(EXIT.NOT_FOUND, `no key ${JSON.stringify(key)} in group ${JSON.stringify(group)}`)
        ctx.print(ctx.json ? compact(value) : pretty(value))
        return EXIT.OK
      }),
  },

  list: {
    args: ['group'],
    summary: "list a group's entries (key and value) in insertion order",
    help: 'Lists the entries of <group> in insertion order: a table of keys and values (each value on one\nline, cut to the width of the terminal).\n--json: [{ "key", "value" }]',
    run: (ctx, [group]) =>
      withReader(ctx, async (reader) => {
        const entries = await reader.entries(group)
        if (ctx.json) ctx.print(compact(entries))
        else if (entries.length === 0) ctx.err.write(`(group ${JSON.stringify(group)} has no items)\n`)
        else {
          const width = ctx.out.isTTY ? ctx.out.columns : undefined
          ctx.out.write(table(['KEY', 'VALUE'], entries.map(({ key, value }) => [key, compact(value)]), width))
        }
        return EXIT.OK
      }),
  },

  set: {
    args: ['group', 'key', 'json'],
    summary: 'store a JSON value',
    help: 'Stores the JSON value <json> under <key> in <group> (creating the file store if needed).\nQuote it for the shell: stepstate set orders o1 \'{"status":"new"}\'.\nPrints the new value; --json: { "new_value", "old_value" }',
    run: (ctx, [group, key, text]) => {
      const value = parseJson(text, '<json>')
      return withManager(ctx, async (manager) => {
        const result = await manager.set(group, key, value)
        ctx.print(ctx.json ? compact(result) : pretty(result.new_value))
        return EXIT.OK
      })
    },
  },

  update: {
    args: ['group', 'key', 'ops-json'],
    summary: 'apply update ops atomically (all or nothing)',
    help: 'Applies <ops-json>, a JSON array of UpdateOps, to <key> in <group> atomically, e.g.\nstepstate update orders o1 \'[{"type":"increment","path":"count","by":1}]\'.\nA failing op changes nothing and exits 6 with its code. Prints the new value;\n--json: { "new_value", "old_value" }',
    run: (ctx, [group, key, text]) => {
      const ops = parseJson(text, '<ops-json>')
      return withManager(ctx, async (manager) => {
        const result = await manager.update(group, key, ops)
        ctx.print(ctx.json ? compact(result) : pretty(result.new_value))
        return EXIT.OK
      })
    },
  },

  del: {
    args: ['group', 'key'],
    summary: 'delete a key (exit 1 when absent)',
    help: 'Deletes <key> from <group> and prints the value it held. Exit 1 when there is no such key.\n--json: { "deleted": value }',
    run: (ctx, [group, key]) =>
      withManager(
        ctx,
        async (manager) => {
          const value = await manager.get(group, key)
          if (value === null && !(await manager.keys(group)).includes(key)) {
            throw new CliError(EXIT.NOT_FOUND, `no key ${JSON.stringify(key)} in group ${JSON.stringify(group)}`)
          }
          const deleted = await manager.delete(group, key)
          ctx.print(ctx.json ? compact({ deleted }) : pretty(deleted))
          return EXIT.OK
        },
        { mustExist: true },
      ),
  },

  clear: {
    args: ['group'],
    summary: 'delete every item of a group',
    help: 'Deletes every item of <group>.\n--json: { "group", "cleared": <items it held just before> }',
    run: (ctx, [group]) =>
      withManager(
        ctx,
        async (manager) => {
          const cleared = (await manager.keys(group)).length
          await manager.clear(group)
          if (ctx.json) ctx.print(compact({ group, cleared }))
          else ctx.out.write(`cleared group ${JSON.stringify(group)} (${cleared} items)\n`)
          return EXIT.OK
        },
        { mustExist: true },
      ),
  },

  export: {
    args: ['group?'],
    summary: 'write every item (or a group\'s) as JSON lines',
    help: 'Writes every item, or those of [group], as JSON lines {"group","key","value"}: groups sorted,\nitems in insertion order, to stdout or to the file --out. Values only: TTLs are not exported.\n`stepstate import` reads them back.',
    run: (ctx, [only]) =>
      withReader(ctx, async (reader) => {
        const groups = only === undefined ? await reader.groups() : [only]
        const out = ctx.options.out === undefined ? ctx.out : fs.createWriteStream(ctx.options.out)
        const shown = progress(ctx.err)
        let written = 0
        try {
          for (const group of groups) {
            for (const { key, value } of await reader.entries(group)) {
              if (!out.write(JSON.stringify({ group, key, value }) + '\n')) await once(out, 'drain')
              written += 1
              shown.update(`exported ${written} items (group ${group})`)
            }
          }
        } finally {
          shown.done()
          if (out !== ctx.out) {
            out.end()
            await once(out, 'finish')
          }
        }
        if (ctx.options.out !== undefined) {
          const report = { exported: written, groups: groups.length, out: ctx.options.out }
          if (ctx.json) ctx.print(compact(report))
          else ctx.err.write(`exported ${written} items of ${groups.length} groups to ${ctx.options.out}\n`)
        }
        return EXIT.OK
      }),
  },

  import: {
    args: ['file'],
    summary: 'store the items of a JSON lines file (each line all or nothing)',
    help: 'Stores every line {"group","key","value"} of <file> (`-` for stdin) in order, each line on its\nown: a rejected line (not JSON, a missing field, a value the store refuses) changes nothing and\nis reported with its number; the others are stored. Exit 6 when any line was rejected.\n--json: { "imported", "rejected": [{ "line", "code", "message" }] }',
    run: async (ctx, [file]) => {
      const input = file === '-' ? process.stdin : fs.createReadStream(file)
      await new Promise((resolve, reject) => {
        if (file === '-') return resolve()
        input.once('open', resolve)
        input.once('error', (err) =>
          reject(err.code === 'ENOENT' ? new CliError(EXIT.NOT_FOUND, `no file ${file}`) : err),
        )
      })
      return withManager(ctx, async (manager) => {
        const rejected = []
        let imported = 0
        let number = 0
        const shown = progress(ctx.err)
        try {
          for await (const line of readline.createInterface({ input, crlfDelay: Infinity })) {
            number += 1
            if (line.trim() === '') continue
            try {
              let item
              try {
                item = JSON.parse(line)
              } catch (err) {
                throw Object.assign(new Error(`not JSON: ${err.message}`), { code: 'INVALID_LINE' })
              }
              if (item === null || typeof item !== 'object' || Array.isArray(item) || !('value' in item)) {
                throw Object.assign(new Error('not an object with "group", "key" and "value"'), { code: 'INVALID_LINE' })
              }
              await manager.set(item.group, item.key, item.value)
              imported += 1
            } catch (err) {
              rejected.push({ line: number, code: err.code || 'FAILED', message: err.message })
              // The store itself failing (unreachable, IO) ends the import; a refused line does not.
              if (err.code !== 'INVALID_LINE' && [EXIT.UNAVAILABLE, EXIT.FAILED].includes(exitCodeOf(err))) throw err
            }
            shown.update(`imported ${imported} items, ${rejected.length} lines rejected (line ${number})`)
          }
        } finally {
          shown.done()
        }
        if (ctx.json) ctx.print(compact({ imported, rejected }))
        else {
          ctx.out.write(`imported ${imported} items${rejected.length ? `, rejected ${rejected.length} lines:` : ''}\n`)
          for (const r of rejected) ctx.out.write(`  line ${r.line}: ${r.code}: ${r.message}\n`)
        }
        return rejected.length ? EXIT.REJECTED : EXIT.OK
      })
    },
  },

  stats: {
    args: [],
    summary: 'count groups, items and bytes (file store: files and last compaction)',
    help: 'Counts groups, items and bytes (keys and JSON values, UTF-8). For a file store also the sizes\nof its logs and snapshot and the time of the last compaction (the snapshot\'s).\n--json: { "store", "groups", "items", "bytes", ... }',
    run: (ctx) =>
      withReader(ctx, async (reader) => {
        const groups = await reader.groups()
        const counted = await countItems(reader, groups)
        const stats = { store: ctx.where.kind, target: describeTarget(ctx.where), groups: groups.length, items: counted.items, bytes: counted.bytes }
        if (ctx.where.kind === 'file') Object.assign(stats, fileStats(ctx.where.path), { heldBy: reader.held, readAt: reader.readAt.toISOString() })
        if (ctx.json) ctx.print(compact(stats))
        else {
          const rows = [
            ['store', `${stats.store} ${stats.target}`],
            ['groups', stats.groups],
            ['items', stats.items],
            ['bytes', `${stats.bytes} (${bytes(stats.bytes)})`],
          ]
          if (stats.store === 'file') {
            rows.push(['log bytes', `${stats.logBytes} (${bytes(stats.logBytes)})`])
            rows.push(['snapshot bytes', `${stats.snapshotBytes} (${bytes(stats.snapshotBytes)})`])
            rows.push(['last compaction', stats.lastCompaction ?? 'never'])
            for (const file of stats.files) rows.push([`  ${file.name}`, file.bytes])
            rows.push(['held by', stats.heldBy === null ? 'nobody' : `process ${stats.heldBy || '(unknown pid)'}`])
          }
          ctx.out.write(table(['', ''], rows).split('\n').slice(1).join('\n'))
        }
        return EXIT.OK
      }),
  },

  check: {
    args: [],
    summary: 'verify every checksum of a file store',
    help: 'Reads every file recovery would read (the newest snapshot, every log after it) and verifies every\nchecksum, without the lock and without changing anything. Reports the first damage with its\nfile and offset and exits 4. A torn last write past what was synced is not damage (recovery\ndrops it): it is reported as a dropped tail.\n--json: { "ok", "files": [{ "kind", "path", "bytes", "records", "droppedTailBytes" }],\n"damage": null | { "file", "offset", "message" } }',
    run: async (ctx) => {
      if (ctx.where.kind !== 'file') throw new CliError(EXIT.USAGE, 'check verifies the files of a file store (--path); Redis keeps no checksums of its own')
      requireStoreDir(ctx.where)
      const held = holderOf(ctx.where)
      if (held !== null) noteHeld(ctx, { kind: 'file', held, readAt: new Date() })
      let files
      const report = { ok: true, files: [], damage: null }
      try {
        files = native.filesToCheckAt(ctx.where.path)
      } catch (raw) {
        const err = fromNative(raw)
        if (err.code !== 'CORRUPT') throw err
        files = []
        report.ok = false
        report.damage = { file: null, offset: null, message: err.message }
      }
      const shown = progress(ctx.err)
      try {
        for (const [i, file] of files.entries()) {
          shown.update(`checking ${file.path} (${i + 1} of ${files.length})`)
          let checked
          try {
            checked = native.checkStoreFile(file.kind, file.path)
          } catch (raw) {
            throw fromNative(raw)
          }
          report.files.push({ kind: checked.kind, path: checked.path, bytes: checked.bytes, records: checked.records, droppedTailBytes: checked.droppedTailBytes })
          if (checked.damage != null) {
            report.ok = false
            report.damage = { file: checked.path, offset: checked.damageOffset ?? null, message: checked.damage }
            break
          }
        }
      } finally {
        shown.done()
      }
      if (ctx.json) ctx.print(compact(report))
      else {
        if (report.files.length) {
          ctx.out.write(table(['KIND', 'FILE', 'BYTES', 'RECORDS', 'DROPPED TAIL'], report.files.map((f) => [f.kind, f.path, f.bytes, f.records, f.droppedTailBytes])))
        }
        if (report.ok) ctx.out.write(`ok: ${report.files.length} files, every checksum verified\n`)
      }
      if (!report.ok) {
        const where = report.damage.file === null ? '' : ` in ${report.damage.file} at offset ${report.damage.offset}`
        ctx.err.write(`stepstate: CORRUPT${where}: ${report.damage.message}\n`)
        return EXIT.CORRUPT
      }
      return EXIT.OK
    },
  },

  watch: {
    args: ['group?'],
    summary: 'print change events as they happen (Ctrl-C to stop)',
    help: 'Prints every change event (of [group] only, if given) as it happens, until interrupted.\nOn Redis it sees every process\'s writes. A file store is written only by the process holding\nit, so watch cannot follow another process\'s writes (exit 3 when it is held); on a free file\nstore it holds the store itself and shows what happens there (expiries).\n--json: one event a line, as onChange gives it',
    run: async (ctx, [group]) => {
      if (ctx.where.kind === 'file') {
        requireStoreDir(ctx.where)
        const held = holderOf(ctx.where)
        if (held !== null) {
          const err = new CliError(
            EXIT.LOCKED,
            `${ctx.where.path} is held by ${held ? `process ${held}` : 'another process'}: watch cannot follow another process's writes to a file store (only the holder sees them); use a Redis store (--url) to watch changes across processes`,
            'LOCKED',
          )
          throw err
        }
      }
      const manager = await openManager(ctx.where)
      const off = manager.onChange(
        (event) => {
          if (ctx.json) ctx.print(compact(event))
          else {
            const time = new Date().toISOString().slice(11, 23)
            const value = event.event_type === 'state:deleted' ? compact(event.old_value) : compact(event.new_value)
            const reason = event.reason ? ` (${event.reason})` : ''
            ctx.out.write(`${time}  ${event.event_type}${reason}  ${JSON.stringify(event.group_id)}  ${JSON.stringify(event.item_id)}  ${value}\n`)
          }
        },
        group === undefined ? undefined : { group },
      )
      if (ctx.where.kind === 'file') ctx.err.write(`note: holding ${ctx.where.path} while watching; other processes cannot open it meanwhile\n`)
      ctx.err.write(`watching ${describeTarget(ctx.where)}${group === undefined ? '' : ` group ${JSON.stringify(group)}`} (Ctrl-C to stop)\n`)
      // Event deliveries do not keep Node alive (they are unref'd): this timer does, until a signal.
      const alive = setInterval(() => {}, 1 << 30)
      await new Promise((resolve) => {
        process.once('SIGINT', resolve)
        process.once('SIGTERM', resolve)
      })
      clearInterval(alive)
      off()
      await manager.close()
      return EXIT.OK
    },
  },
}

/** Sizes of a file store's logs and snapshot, and its last compaction (the snapshot's mtime). */
function fileStats(dir) {
  const files = []
  let logBytes = 0
  let snapshotBytes = 0
  let lastCompaction = null
  for (const name of fs.readdirSync(dir).sort()) {
    const isLog = /^log-\d+\.log$/.test(name)
    const isSnapshot = /^snapshot-\d+\.snap$/.test(name)
    if (!isLog && !isSnapshot) continue
    let stat
    try {
      stat = fs.statSync(`${dir}/${name}`)
    } catch {
      continue // retired by the holder meanwhile
    }
    files.push({ name, bytes: stat.size })
    if (isLog) logBytes += stat.size
    else {
      snapshotBytes += stat.size
      if (lastCompaction === null || stat.mtime > new Date(lastCompaction)) lastCompaction = stat.mtime.toISOString()
    }
  }
  return { logBytes, snapshotBytes, lastCompaction, files }
}

module.exports = { commands }
