// Helpers of the type tests: `expectType<T>()(value)` compiles only when the type of `value`
// is exactly `T` (not merely assignable), so a result that widens to `any` fails too.

export type Equal<X, Y> =
  (<T>() => T extends X ? 1 : 2) extends (<T>() => T extends Y ? 1 : 2) ? true : false

export function expectType<Expected>() {
  return <Actual>(
    _value: Actual,
    ..._exact: Equal<Actual, Expected> extends true ? [] : ['type mismatch: see Expected and Actual']
  ): void => {}
}
