// ESM entry point of `stepstate/testing`: the same functions as the CommonJS one.
import testing from './testing.js'

export const { createTestState, closeTestStates } = testing
export default testing
