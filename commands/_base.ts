import { BaseCommand, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { E_LOCK_STORAGE_ERROR } from '../src/errors.ts'
import type { LockFactory } from '../src/lock_factory.ts'
import type { LockManager } from '../src/lock_manager.ts'
import { MemoryStore } from '../src/stores/memory.ts'
import type { LockInspection, LockStore } from '../src/types.ts'

/**
 * What a store can tell about a key. `expiresIn` and `fencingToken` are
 * `undefined` when the store cannot tell (it lacks `inspect()`).
 */
export interface LockState {
  held: boolean
  owner: string | null | undefined
  expiresIn: number | null | undefined
  fencingToken: number | null | undefined
}

/**
 * The parts the lock commands share: the app's lock manager, the
 * `--store` flag, and turning failures into an exit code and a message
 * rather than a stack trace
 */
export abstract class LockCommand extends BaseCommand {
  static options: CommandOptions = { startApp: true }

  @flags.string({ description: 'Store of config/lock.ts (the default store when omitted)' })
  declare store?: string

  protected async manager(): Promise<LockManager> {
    return (await this.app.container.make('lock.manager')) as unknown as LockManager
  }

  /**
   * The factory of `--store` (or of the default store), or undefined
   * after reporting why there is none
   */
  protected async factory(name = this.store): Promise<LockFactory | undefined> {
    try {
      const manager = await this.manager()
      return manager.use(name ?? manager.defaultStoreName)
    } catch (error) {
      this.fail(error)
      return undefined
    }
  }

  /**
   * Memory locks live in the process that took them: a separate
   * `node ace` process never sees them
   */
  protected warnIfMemory(factory: LockFactory) {
    if (factory.store instanceof MemoryStore) {
      this.logger.warning(
        `The "${factory.options.storeName}" store keeps locks in the memory of each process: this command only sees its own`
      )
    }
  }

  protected fail(error: unknown, action?: string) {
    this.exitCode = 1
    const reported = action ? E_LOCK_STORAGE_ERROR.wrap(error, action) : error
    this.logger.error(reported instanceof Error ? reported.message : String(reported))
  }
}

/**
 * Asks the store about a key with the best method it has: `inspect()`,
 * else `owner()`, else `exists()`
 */
export async function readLockState(store: LockStore, key: string): Promise<LockState> {
  if (store.inspect) {
    const inspection: LockInspection | null = await store.inspect(key)
    return inspection
      ? {
          held: true,
          owner: inspection.owner,
          expiresIn: inspection.expiresIn,
          fencingToken: inspection.fencingToken,
        }
      : { held: false, owner: null, expiresIn: null, fencingToken: null }
  }
  if (store.owner) {
    const owner = await store.owner(key)
    return { held: owner !== null, owner, expiresIn: undefined, fencingToken: undefined }
  }
  const held = await store.exists(key)
  return { held, owner: undefined, expiresIn: undefined, fencingToken: undefined }
}
