// Public typings of stepstate: hand-written, checked by `tsc -p __test__/types`.
//
// The same names are exported by `require('stepstate')` (index.js) and
// `import ... from 'stepstate'` (index.mjs, a re-export of index.js).
//
// Typed groups: `new StateManager<{ orders: Order; users: User }>()` scopes every method by
// group name: `get('orders', k)` resolves `Order | null`, `set('users', k, v)` requires a
// `User`, and a group name not in the map does not compile. An untyped manager
// (`new StateManager()`, i.e. `Groups = Record<string, any>`) accepts any group and yields
// `any`, unless a value type is given explicitly: `state.get<Order>('orders', k)`.
// Declare the groups map with a `type` alias, not an `interface`: an interface has no implicit
// index signature, so it does not satisfy `Record<string, unknown>`.

/** A JSON value, as `JSON.stringify` would store it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject

/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue }

/**
 * A path into a stored value:
 * - `'a.b.c'` walks nested objects (dot-separated segments);
 * - `['a.b', 'c']` gives literal segments (dots and slashes are not split);
 * - a string beginning with `/` is a JSON Pointer (RFC 6901, `~1` is `/`, `~0` is `~`);
 * - `''` is the root value.
 *
 * Segments `__proto__`, `constructor` and `prototype` are rejected (`path.proto_polluted`).
 * (An array path may be `readonly`, so ops written `as const` are accepted.)
 */
export type Path = string | readonly string[]

/**
 * One operation of {@link StateManager.update}. Ops apply in order, all-or-nothing: if one
 * fails, the update rejects with a {@link StateError} carrying its `opIndex` and the store is
 * unchanged. Two notations are accepted and can be mixed in one list.
 */
export type UpdateOp =
  /** Sets the value at `path` (missing intermediate objects are created). */
  | { type: 'set'; path: Path; value: JsonValue }
  /** Shallow-merges `value` into the object at `path` (the root when omitted or `''`); `merge.target_not_object` otherwise. */
  | { type: 'merge'; path?: Path; value: JsonObject }
  /** Adds `by` to the number at `path` (a missing field starts from 0); `increment.not_number` otherwise. */
  | { type: 'increment'; path: Path; by: number }
  /** Subtracts `by` from the number at `path` (a missing field starts from 0). */
  | { type: 'decrement'; path: Path; by: number }
  /** Pushes `value` onto the array at `path`, or concatenates it to the string there; `append.type_mismatch` otherwise. */
  | { type: 'append'; path?: Path; value: JsonValue }
  /** Removes the field at `path`; removing a missing field is a no-op. */
  | { type: 'remove'; path: Path }
  /** Precondition (compare-and-set): the value at `path` must deep-equal `value`, else the update fails with `test.failed`. */
  | { type: 'test'; path: Path; value: JsonValue }
  /**
   * JSON-Patch style: add/replace sets the value at `path` (replace writes as `set` does, so a
   * missing member is set, not an error); test is the precondition above, the way to require
   * that a value is there before replacing it.
   */
  | { op: 'add' | 'replace' | 'test'; path: string; value: JsonValue }
  /** JSON-Patch style remove. */
  | { op: 'remove'; path: string }
  /** JSON-Patch style increment: adds `value` to the number at `path`. */
  | { op: 'increment'; path: string; value: number }

/** Result of `set` and `update`: the value now stored and the one it replaced (`null` when the key was absent). */
export type StreamSetResult<T> = { new_value: T; old_value: T | null }

/** One item of a group, as returned by `entries`. */
export type StateEntry<T> = { key: string; value: T }

/**
 * A committed change of one item, delivered to {@link StateManager.onChange} listeners and
 * {@link StateManager.watch} iterators after the write is committed, per key in commit order.
 *
 * `G` narrows `group_id` for typed managers, so that on an unfiltered listener
 * `if (e.group_id === 'orders')` narrows `e.new_value` to the orders' value type.
 */
export type StateChangeEvent<T = any, G extends string = string> = {
  type: 'state'
  event_type: 'state:created' | 'state:updated' | 'state:deleted'
  group_id: G
  item_id: string
  /** `null` for `state:created`. */
  old_value: T | null
  /** `null` for `state:deleted`. */
  new_value: T | null
  /** Why a `state:deleted` happened when it was not a `delete` call. */
  reason?: 'expired' | 'cleared'
}

/** Selects which changes a listener or watcher receives; every field present must match. */
export type ChangeFilter<G extends string = string, E = StateChangeEvent> = {
  /** Only changes of this group. */
  group?: G
  /** Only changes of this key (usually with `group`). */
  key?: string
  /** Only events for which this returns `true`. */
  condition?: (event: E) => boolean
}

/**
 * A listener of change events, sync or async; its result is ignored. A throw or a rejected
 * promise is reported through the `'error'` event, never to the writer or other listeners.
 */
export type ChangeListener<E = StateChangeEvent> = (event: E) => unknown

/**
 * The async-iterator form of change events, from {@link StateManager.watch}. Iterate it with
 * `for await`; `break` (or calling `return()`) unsubscribes. Events that arrive while nobody
 * is awaiting are buffered.
 */
export interface StateChangeIterator<E = StateChangeEvent> extends AsyncIterableIterator<E> {
  next(): Promise<IteratorResult<E, undefined>>
  /** Unsubscribes and ends the iteration; pending `next()` calls resolve `{ done: true }`. */
  return(value?: unknown): Promise<IteratorResult<E, undefined>>
  [Symbol.asyncIterator](): StateChangeIterator<E>
}

/**
 * A storage backend written in JavaScript, passed as `{ adapter: obj }`.
 *
 * The adapter only stores values; StateManager supplies on top of it argument and value checks,
 * atomic `update` (writes of one key wait in line within the process; the core's op engine
 * computes the new value), change events and TTL. It is given a fresh copy of each value and may
 * keep it as it is; what it gives back is copied before anyone sees it. An item with an expiry
 * is given to it in an envelope, `{ $stepstate: { expiresAt: <ms since the epoch> }, value }`,
 * to be stored and given back as it is (see README, "Your own store"). A method that throws or
 * rejects makes the call reject with code `BACKEND_UNAVAILABLE` and the adapter's error as
 * `cause`.
 */
export interface StateAdapter {
  /** The stored value, or `null` when absent. */
  get(group: string, key: string): Promise<JsonValue | null>
  /** Stores `value`; resolves the previous value, or `null` when the key was absent. */
  set(group: string, key: string, value: JsonValue): Promise<JsonValue | null>
  /** Removes the item; resolves the removed value, or `null` when the key was absent. */
  delete(group: string, key: string): Promise<JsonValue | null>
  /** Every item of the group in insertion order; `[]` for an unknown group. */
  entries(group: string): Promise<Array<StateEntry<JsonValue>>>
  /** Removes every item of the group. */
  clear(group: string): Promise<unknown>
  /** Names of the non-empty groups, in any order. */
  listGroups(): Promise<string[]>
  /** Optional: called once by the manager's `close()`, after its writes have settled. */
  close?(): Promise<unknown>
}

/** Options of {@link StateManager.open} and the {@link StateManager} constructor (the classic config file's keys). */
export interface StateOptions {
  /**
   * Where state lives: `'memory'` (default; nothing on disk), `'file'` (append-only log plus
   * snapshots in the directory `path`), `'redis'` (shared by processes), or an object
   * implementing {@link StateAdapter}.
   */
  adapter?: 'memory' | 'file' | 'redis' | StateAdapter
  /** File adapter: the store directory, locked exclusively by one process. Default `'.stepstate'`. */
  path?: string
  /**
   * File adapter: when a resolved write is on disk, in Redis `appendfsync` words.
   * `'always'`: fsync before resolving (survives power loss); `'everysec'` (default): survives a
   * process crash, power loss may lose about the last second; `'no'`: the OS decides.
   */
  sync?: 'always' | 'everysec' | 'no'
  /**
   * File adapter: the log is compacted (a new snapshot and a fresh log, in the background) once
   * it is larger than twice the live data and at least this many bytes. Default 64 MiB.
   */
  compactMinBytes?: number
  /**
   * Bytes of JSON text of recently read or written values this manager keeps parsed, to answer
   * reads with a copy instead of a parse (the engine confirms each is still current). `0`
   * turns the cache off. Default 4 MiB.
   */
  cacheBytes?: number
  /** Redis adapter: connection URL, e.g. `'redis://127.0.0.1:6379'` (instead of host/port/...). */
  url?: string
  /** Redis adapter: host name. Default `'127.0.0.1'`. */
  host?: string
  /** Redis adapter: port. Default `6379`. */
  port?: number
  /** Redis adapter: user name (ACL). */
  username?: string
  /** Redis adapter: password (AUTH). */
  password?: string
  /** Redis adapter: database number. Default `0`. */
  db?: number
  /**
   * Redis adapter: connect with TLS (`rediss://`); `{ ca }` also trusts a certificate authority
   * (PEM) of your own. Default `false`.
   */
  tls?: boolean | { ca?: string | Uint8Array }
  /** Redis adapter: key prefix; processes sharing a prefix share state and change events. Default `'stepstate:'`. */
  prefix?: string
  /**
   * Redis adapter: milliseconds a call waits for Redis (to connect or answer) before it rejects
   * with `BACKEND_UNAVAILABLE`. Default `5000`.
   */
  commandTimeout?: number
  /**
   * Redis adapter: about how many change events the stream under the prefix keeps, for
   * listeners that reconnect; each holds the old and new value, so large values call for fewer.
   * Default `100000`.
   */
  eventsKept?: number
  /** Default time to live of items written by `set`, in seconds. Default: none (items never expire). */
  ttl?: number
  /** Largest serialized JSON size of a value, in bytes, for `set` and the result of `update`. Default: no limit. */
  maxValueBytes?: number
}

/** Options of {@link StateManager.set}. */
export interface SetOptions {
  /** Time to live of this item, in seconds; overrides the store's default `ttl`. */
  ttl?: number
}

/**
 * The `code` of every rejection. Op failures use dotted codes (`test.failed`, ...); the open
 * `(string & {})` tail keeps codes added by later versions assignable.
 */
export type StateErrorCode =
  | 'INVALID_ARGUMENT'
  | 'INVALID_VALUE'
  | 'INVALID_OP'
  | 'VALUE_TOO_LARGE'
  | 'LOCKED'
  | 'CORRUPT'
  | 'CLOSED'
  | 'BACKEND_UNAVAILABLE'
  | 'IO'
  | 'test.failed'
  | 'increment.not_number'
  | 'increment.overflow'
  | 'decrement.not_number'
  | 'decrement.overflow'
  | 'merge.target_not_object'
  | 'append.type_mismatch'
  | 'remove.root'
  | 'path.proto_polluted'
  | 'path.not_container'
  | 'path.invalid_index'
  | 'path.index_out_of_range'
  | 'path.too_deep'
  | (string & {})

/**
 * The error every stepstate rejection carries, except bad arguments (a non-string or empty
 * group or key, `ops` not an array), which reject with a `TypeError` whose `code` is
 * `'INVALID_ARGUMENT'`. Branch on `code`, never on `message` (the message names the group,
 * key and op).
 */
export declare class StateError extends Error {
  /** Builds an error the way the store does (e.g. in a custom adapter or a test double). */
  constructor(code: StateErrorCode, message: string, opIndex?: number)
  readonly name: 'StateError'
  /** Stable code, e.g. `'CLOSED'` or `'test.failed'`. */
  readonly code: StateErrorCode
  /** Position of the failing op in an `update` op list, when the error comes from one. */
  readonly opIndex?: number
}

/** Group names of a groups map. */
export type GroupName<Groups> = keyof Groups & string

/**
 * The value type of group `G`, unless a value type `V` was given explicitly
 * (`V` is `never` when the caller gave none).
 */
export type GroupValue<Groups, G extends keyof Groups, V> = [V] extends [never] ? Groups[G] : V

/** The change event of any group in `G`, a union discriminated by `group_id`. */
export type GroupChangeEvent<Groups, G extends keyof Groups & string, V> = [V] extends [never]
  ? { [K in G]: StateChangeEvent<Groups[K], K> }[G]
  : StateChangeEvent<V, G>

/** Listener of the `'error'` event: `err` is what a change listener threw or rejected with, `event` the event it was handling. */
export type ListenerErrorHandler = (err: unknown, event: StateChangeEvent) => void

/**
 * Persistent, grouped key-value state for workflow steps.
 *
 * Every method returns a Promise. Values are JSON, stored as `JSON.stringify` serializes them,
 * and come back as fresh copies. `group` and `key` are non-empty strings of at most 1024 bytes
 * (any characters); anything else rejects with a `TypeError` of code `INVALID_ARGUMENT`. After
 * {@link close}, every call rejects with code `CLOSED`.
 *
 * Each value-returning method has two type parameters: `V`, an explicit value type for untyped
 * managers (`state.get<Order>('orders', id)`), and `G`, the group name, inferred from the
 * argument. Leave both out on typed managers.
 *
 * The class is a Node.js `EventEmitter`; its `'error'` event reports change listeners that
 * threw or rejected.
 *
 * @typeParam Groups - map from group name to value type, e.g. `{ orders: Order; users: User }`.
 */
export declare class StateManager<Groups extends Record<string, unknown> = Record<string, any>> {
  /**
   * Opens a store and resolves once it is ready (the file log recovered and locked, the Redis
   * connection established).
   *
   * @example const state = await StateManager.open<{ orders: Order }>({ adapter: 'file', path: '.stepstate' })
   * @throws code `LOCKED` when another process holds the store directory (its pid is in the message),
   *   `CORRUPT` when the log is damaged before its tail, `BACKEND_UNAVAILABLE` when Redis cannot be reached,
   *   `IO` on other I/O failures; a `TypeError` (`INVALID_ARGUMENT`) for bad options.
   */
  static open<Groups extends Record<string, unknown> = Record<string, any>>(
    options?: StateOptions,
  ): Promise<StateManager<Groups>>

  /**
   * Creates a store without waiting for it: calls made before it is ready are queued. With no
   * options it is in memory (`{ adapter: 'memory' }`); opening errors reject the queued calls.
   * Prefer {@link StateManager.open} for durable stores, to see opening errors up front.
   */
  constructor(options?: StateOptions)

  /**
   * Stores `value` under `group`/`key`, replacing any previous value (the key keeps its place
   * in insertion order). `opts.ttl` (seconds) overrides the store's default TTL.
   *
   * @returns `{ new_value, old_value }`, `old_value` being `null` when the key was absent.
   * @throws code `INVALID_VALUE` for a value that is not JSON (top-level undefined, function,
   *   symbol, NaN, ±Infinity; a BigInt or a cycle anywhere; nested more than 100 objects/arrays
   *   deep; a getter, Proxy trap or toJSON that throws, as `cause`); `VALUE_TOO_LARGE` above
   *   `maxValueBytes` or above 268,435,442 bytes of JSON (what can always be read back).
   */
  set<V = never, G extends GroupName<Groups> = GroupName<Groups>>(
    group: G,
    key: string,
    value: NoInfer<GroupValue<Groups, G, V>>,
    opts?: SetOptions,
  ): Promise<StreamSetResult<GroupValue<Groups, G, V>>>

  /**
   * Reads one item.
   *
   * @returns a fresh copy of the value, or `null` when the key is absent or expired.
   */
  get<V = never, G extends GroupName<Groups> = GroupName<Groups>>(
    group: G,
    key: string,
  ): Promise<GroupValue<Groups, G, V> | null>

  /**
   * Reads every value of a group, in insertion order (overwriting a key keeps its place; delete
   * then set moves it to the end). Same as {@link list}.
   *
   * @returns an array of values; `[]` for an unknown or empty group.
   */
  getGroup<V = never, G extends GroupName<Groups> = GroupName<Groups>>(
    group: G,
  ): Promise<Array<GroupValue<Groups, G, V>>>

  /**
   * Reads every value of a group, in insertion order. Same as {@link getGroup}.
   *
   * @returns an array of values; `[]` for an unknown or empty group.
   */
  list<V = never, G extends GroupName<Groups> = GroupName<Groups>>(
    group: G,
  ): Promise<Array<GroupValue<Groups, G, V>>>

  /**
   * Reads every item of a group with its key, in insertion order.
   *
   * @returns an array of `{ key, value }`; `[]` for an unknown or empty group.
   */
  entries<V = never, G extends GroupName<Groups> = GroupName<Groups>>(
    group: G,
  ): Promise<Array<StateEntry<GroupValue<Groups, G, V>>>>

  /**
   * Reads the keys of a group, in insertion order.
   *
   * @returns an array of keys; `[]` for an unknown or empty group.
   */
  keys(group: GroupName<Groups>): Promise<string[]>

  /**
   * Lists the groups that hold at least one item.
   *
   * @returns the group names, sorted. (Typed `string[]`: a shared store may hold groups this
   *   manager's `Groups` map does not declare.)
   */
  listGroups(): Promise<string[]>

  /**
   * Removes one item, atomically: the value returned is the one removed. Fires `state:deleted`
   * when the key existed; deleting a missing key fires nothing.
   *
   * @returns the removed value, or `null` when the key was absent.
   */
  delete<V = never, G extends GroupName<Groups> = GroupName<Groups>>(
    group: G,
    key: string,
  ): Promise<GroupValue<Groups, G, V> | null>

  /**
   * Removes every item of a group, whatever the items look like. Fires one `state:deleted`
   * per removed item, with `reason: 'cleared'`.
   */
  clear(group: GroupName<Groups>): Promise<void>

  /**
   * Applies `ops` to one item atomically and all-or-nothing: concurrent updates of one key
   * never lose each other's effects. A missing key starts from `{}`; the item keeps its expiry.
   *
   * @example
   * await state.update('orders', id, [
   *   { type: 'test', path: 'status', value: 'pending' },   // compare-and-set
   *   { type: 'set', path: 'status', value: 'paid' },
   *   { type: 'increment', path: 'payments', by: 1 },
   * ])
   * @returns `{ new_value, old_value }`, `old_value` being `null` when the key was absent.
   * @throws a {@link StateError} with `opIndex` and an op code (`test.failed`,
   *   `increment.not_number`, `merge.target_not_object`, `append.type_mismatch`,
   *   `path.proto_polluted`) or `INVALID_OP` for a malformed op, the store unchanged and no
   *   event fired (`path.too_deep` when the result or an op's value would nest more than 100
   *   levels); `VALUE_TOO_LARGE` when the result exceeds `maxValueBytes` or 268,435,442 bytes;
   *   a `TypeError` (`INVALID_ARGUMENT`) when `ops` is not an array. A getter or Proxy trap of
   *   an op that throws is `INVALID_OP` with its `opIndex` and the error as `cause`.
   */
  update<V = never, G extends GroupName<Groups> = GroupName<Groups>>(
    group: G,
    key: string,
    ops: readonly UpdateOp[],
  ): Promise<StreamSetResult<GroupValue<Groups, G, V>>>

  /**
   * Subscribes to committed changes (state triggers). Listeners run after the write is
   * committed, per key in commit order; one that throws or rejects never affects the write or
   * other listeners, and its error is emitted as `'error'` (see {@link on}). With
   * `filter.group` on a typed manager, the event's values have that group's type.
   *
   * @example const off = state.onChange(async (e) => { ... }, { group: 'orders', condition: (e) => e.event_type === 'state:created' })
   * @returns a function that unsubscribes (calling it twice is harmless).
   * @throws synchronously, a `TypeError` (`INVALID_ARGUMENT`) for a listener that is not a
   *   function, or a filter whose `group`/`key` is not a name (a non-empty string of at most
   *   1024 bytes) or whose getter or Proxy trap throws (as `cause`); `CLOSED` after `close()`.
   */
  onChange<V = never, G extends GroupName<Groups> = GroupName<Groups>>(
    listener: NoInfer<ChangeListener<GroupChangeEvent<Groups, G, V>>>,
    filter?: ChangeFilter<G, NoInfer<GroupChangeEvent<Groups, G, V>>>,
  ): () => void

  /**
   * The async-iterator form of {@link onChange}: yields the matching change events in commit
   * order until the loop exits (`break`, `return()`) or the store closes.
   *
   * @example for await (const e of state.watch({ group: 'orders' })) { if (e.event_type === 'state:deleted') break }
   */
  watch<V = never, G extends GroupName<Groups> = GroupName<Groups>>(
    filter?: ChangeFilter<G, NoInfer<GroupChangeEvent<Groups, G, V>>>,
  ): StateChangeIterator<GroupChangeEvent<Groups, G, V>>

  /**
   * Flushes every acknowledged write and releases files, locks and connections. Calling it
   * twice is harmless; any other call afterwards rejects with code `CLOSED`.
   */
  close(): Promise<void>

  /** Adds a handler of listener errors: a change listener threw or rejected while handling `event`. */
  on(event: 'error', listener: ListenerErrorHandler): this
  /** Same as {@link on}. */
  addListener(event: 'error', listener: ListenerErrorHandler): this
  /** Adds a handler of the next listener error only. */
  once(event: 'error', listener: ListenerErrorHandler): this
  /** Removes a handler added with {@link on}. */
  off(event: 'error', listener: ListenerErrorHandler): this
  /** Same as {@link off}. */
  removeListener(event: 'error', listener: ListenerErrorHandler): this
}
