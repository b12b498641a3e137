import type { LockService } from './types/config.ts'
import type { LockEvents } from './types/events.ts'

/**
 * The public types (`adonis-lock/types`), one file per concept in
 * src/types/: the store contract, lock options, events, config and the
 * middleware's options
 */
export type * from './types/stores.ts'
export type * from './types/locks.ts'
export type * from './types/events.ts'
export type * from './types/config.ts'
export type * from './types/middleware.ts'

declare module '@adonisjs/core/types' {
  interface EventsList extends LockEvents {}
  interface ContainerBindings {
    'lock.manager': LockService
  }
}
