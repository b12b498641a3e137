/**
 * JavaScript entrypoint of Ace: runs the TypeScript sources through
 * ts-exec, as the AdonisJS 7 starter kits do
 */
import '@poppinss/ts-exec'

await import('./bin/console.js')
