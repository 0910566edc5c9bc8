'use strict'
// The JSON text of an `update`'s op list, made without JSON.stringify for the ops nearly every
// caller writes: `{ type: 'increment', path: 'paid', by: 1 }`, `{ type: 'set', path: 'status',
// value: 'paid' }`, `{ op: 'remove', path: '/a' }`. JSON.stringify of such a list took a fifth of
// the time of a whole in-memory `update` of a small value (by perf, 10,000 concurrent
// increments of one key). The text is exactly JSON.stringify's, character for character, so the
// engine, and its cache of parsed op lists, see no difference; any other list is left to
// JSON.stringify.
//
// Handlers send the same few ops again and again, so the texts made are remembered (up to
// REMEMBERED of them, none longer than LONGEST), by the op's fields: a list seen before costs a
// check of its ops' fields and a few `Map` lookups, and its text is the same string as the last
// time, which V8 has already made flat. A text made by joining strings is a rope that has to be
// copied into one piece before the engine can read it, which cost as much again as making it.
// By callgrind: the binding's `update` with one increment took 6,700 instructions given a
// constant text, 12,000 with the text made anew, 8,500 with it remembered; a whole concurrent
// increment of one key (10,000 at once) 18,200 before, 15,000 with texts remembered.

/** Whether JSON.stringify puts `text` between quotes as it is: no quote, backslash or control
 *  character, and no lone surrogate (`isWellFormed`, as index.js checks names), which it
 *  escapes; a surrogate pair it writes as it is. */
function isVerbatim(text) {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x20 || c === 0x22 || c === 0x5c) return false
  }
  return text.isWellFormed()
}

/** JSON.stringify(value) for a verbatim string, a finite number, a boolean or null; undefined
 *  for anything else. */
function scalarText(value) {
  switch (typeof value) {
    case 'string':
      return isVerbatim(value) ? `"${value}"` : undefined
    case 'number':
      return Number.isFinite(value) ? `${value}` : undefined
    case 'boolean':
      return value ? 'true' : 'false'
    default:
      return value === null ? 'null' : undefined
  }
}

/** How many op texts, and list texts, are remembered before both start over. */
const REMEMBERED = 1024
/** The longest text remembered, in UTF-16 units: a value of a megabyte is not kept. */
const LONGEST = 256

/**
 * The texts made, by the fields they were made of: `remembered.ops[form]` maps the op's name
 * to a Map of its path to `{ by, value }`, two Maps of the last field's value (undefined for an
 * op without that field as for one whose field is undefined) to the op's text. `remembered.lists` maps a list's first op text to `{ text,
 * next }`: the text of the list of that op alone, and a Map of the next op's text to the same
 * for the list of both, and so on. Map keys compare as SameValueZero: `1` and `'1'` differ,
 * `0` and `-0` do not (JSON.stringify writes both as `0`). Only texts this module made are
 * remembered, so a hit needs no check of the strings.
 */
let remembered = null

/**
 * The last op text given out and the fields it was made of, and the last one-op list's text:
 * a handler sends the same op again and again, and a hit here costs a few comparisons instead
 * of the four `Map` lookups of `remembered` (`===` on the last field's value: `0` and `-0`
 * have one text, as in `remembered`; NaN is never taken).
 */
const lastOp = { form: '', name: '', path: '', last: '', value: undefined, text: '' }
const lastList = { op: '', text: '' }

function forget() {
  remembered = { ops: { type: new Map(), op: new Map() }, lists: new Map(), count: 0 }
}
forget()

/** Counts one more text remembered, starting over when there are too many. */
function room() {
  if (remembered.count >= REMEMBERED) forget()
  remembered.count += 1
}

/**
 * JSON.stringify(op) for a plain object (prototype Object.prototype, no `toJSON`) whose
 * enumerable fields are, in this order, `type` or `op` and `path` (verbatim strings), and then
 * at most one of `by` or `value` (a scalar, see `scalarText`); undefined for anything else.
 * `for...in` sees inherited enumerable fields too, so an op with any other field, its own or
 * its prototype's, is not taken.
 */
function opText(op) {
  if (op === null || typeof op !== 'object' || Object.getPrototypeOf(op) !== Object.prototype || op.toJSON !== undefined) {
    return undefined
  }
  let count = 0
  let form = ''
  let last = ''
  for (const name in op) {
    if (count === 0) {
      if (name !== 'type' && name !== 'op') return undefined
      form = name
    } else if (count === 1) {
      if (name !== 'path') return undefined
    } else if (count === 2) {
      if (name !== 'by' && name !== 'value') return undefined
      last = name
    } else {
      return undefined
    }
    count += 1
  }
  if (count < 2) return undefined
  // Named reads: a read by a computed name costs several times more.
  const name = form === 'type' ? op.type : op.op
  const path = op.path
  if (typeof name !== 'string' || typeof path !== 'string') return undefined
  const value = count === 2 ? undefined : last === 'by' ? op.by : op.value
  if (name === lastOp.name && path === lastOp.path && value === lastOp.value && form === lastOp.form && last === lastOp.last) {
    return lastOp.text
  }
  const values = valuesOf(form, name, path, last, false)
  const known = values === undefined ? undefined : values.get(value)
  if (known !== undefined) return keptOp(form, name, path, last, value, known)
  if (!isVerbatim(name) || !isVerbatim(path)) return undefined
  const head = `{"${form}":"${name}","path":"${path}"`
  let text
  // Left out, as JSON.stringify leaves out a field that is undefined.
  if (value === undefined) {
    text = `${head}}`
  } else {
    const valueText = scalarText(value)
    if (valueText === undefined) return undefined
    text = `${head},"${last}":${valueText}}`
  }
  if (text.length <= LONGEST) {
    room()
    valuesOf(form, name, path, last, true).set(value, text)
    keptOp(form, name, path, last, value, text)
  }
  return text
}

/** Makes `text` the last op text given out (see `lastOp`); returns it. */
function keptOp(form, name, path, last, value, text) {
  lastOp.form = form
  lastOp.name = name
  lastOp.path = path
  lastOp.last = last
  lastOp.value = value
  lastOp.text = text
  return text
}

/** The Map of last-field values to texts of the ops with these fields (see `remembered`):
 *  undefined when there is none, unless `make`. */
function valuesOf(form, name, path, last, make) {
  const byName = form === 'type' ? remembered.ops.type : remembered.ops.op
  let byPath = byName.get(name)
  if (byPath === undefined) {
    if (!make) return undefined
    byPath = new Map()
    byName.set(name, byPath)
  }
  let byLast = byPath.get(path)
  if (byLast === undefined) {
    if (!make) return undefined
    byLast = { by: new Map(), value: new Map() }
    byPath.set(path, byLast)
  }
  return last === 'by' ? byLast.by : byLast.value
}

/**
 * JSON.stringify(ops) for an array of `length` ops that `opText` takes, each; undefined for any
 * other list, or when reading it throws (a Proxy's trap): the caller then uses JSON.stringify,
 * which serializes or rejects it in full.
 */
function simpleOpsText(ops, length) {
  try {
    if (ops.toJSON !== undefined) return undefined
    if (length === 0) return '[]'
    if (length === 1) {
      const op = opText(ops[0])
      if (op === undefined) return undefined
      if (op === lastList.op) return lastList.text
      const text = listText([op], 1)
      if (text.length <= LONGEST) {
        lastList.op = op
        lastList.text = text
      }
      return text
    }
    const texts = new Array(length)
    for (let index = 0; index < length; index++) {
      const op = opText(ops[index])
      if (op === undefined) return undefined
      texts[index] = op
    }
    return listText(texts, length)
  } catch {
    return undefined
  }
}

/** The text of the list of the op texts `texts`, remembered by them (see `remembered`). */
function listText(texts, length) {
  let entries = remembered.lists
  let before = null // the entry of the list of the ops before this one
  for (let index = 0; ; index++) {
    let entry = entries.get(texts[index])
    if (entry === undefined) {
      const text = before === null ? `[${texts[index]}]` : `${before.text.slice(0, -1)},${texts[index]}]`
      if (text.length > LONGEST) return `[${texts.join(',')}]`
      entry = { text, next: null }
      // Starting over leaves `entries` to the old Maps, which are dropped with it.
      room()
      entries.set(texts[index], entry)
    }
    if (index === length - 1) return entry.text
    if (entry.next === null) entry.next = new Map()
    entries = entry.next
    before = entry
  }
}

module.exports = { simpleOpsText }
