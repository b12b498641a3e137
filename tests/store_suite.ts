/**
 * The conformance suite ships with the package (`adonis-lock/testing`),
 * for custom stores; the specs of the built-in stores import it from here
 */
export * from '../src/testing/store_suite.ts'
