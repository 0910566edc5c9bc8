// jest settings of the example tests (examples/*.jest.test.cjs), kept apart from the project's
// own vitest specs.
module.exports = {
  rootDir: __dirname,
  testMatch: ['<rootDir>/*.jest.test.cjs'],
  testEnvironment: 'node',
}
