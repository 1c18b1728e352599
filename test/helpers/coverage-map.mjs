// Coverage counts the service's own code, not the tests, benchmarks or scripts.
export default () => ['src/**/*.ts', 'workers/**/*.ts']
