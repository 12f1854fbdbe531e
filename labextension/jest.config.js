/** Jest runs the TypeScript tests in test/ with ts-jest (CommonJS); view tests opt into jsdom per file. */
module.exports = {
  testEnvironment: 'node',
  testMatch: ['<rootDir>/test/**/*.spec.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }] },
  collectCoverageFrom: ['src/**/*.ts', '!src/index.ts'],
  setupFiles: ['<rootDir>/test/setup.ts'],
  clearMocks: true
};
