// Type tests: the package as ESM and CommonJS consumers see it. `import ... from 'stepstate'`
// (a package self-reference, resolved through package.json "exports" to index.d.ts) exposes
// the same names as the relative import used by the other files.

import { StateManager, StateError, type UpdateOp, type StateChangeEvent, type StreamSetResult } from 'stepstate'
import * as relative from '../../index.js'

const state: relative.StateManager<{ orders: { id: string } }> = new StateManager<{ orders: { id: string } }>()
const op: relative.UpdateOp = { type: 'set', path: 'id', value: 'o1' } satisfies UpdateOp
const result: StreamSetResult<{ id: string }> = await state.update('orders', 'o1', [op])
const event: relative.StateChangeEvent | undefined = undefined as StateChangeEvent | undefined
const isStateError = (err: unknown): err is relative.StateError => err instanceof StateError
void result, event, isStateError
// @ts-expect-error not an export of the package
import { Store } from 'stepstate'
void Store
