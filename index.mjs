// ESM entry point: the same classes as the CommonJS entry (one module instance, one binding).
import stepstate from './index.js'

export const { StateManager, StateError } = stepstate
export default stepstate
