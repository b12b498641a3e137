import app from '@adonisjs/core/services/app'
import type { LockService } from '../src/types.ts'

let locks: LockService

/**
 * The app's lock manager, once the app has booted
 */
await app.booted(async () => {
  locks = await app.container.make('lock.manager')
})

export { locks as default }
