import { configProvider } from '@adonisjs/core'
import type { ApplicationService } from '@adonisjs/core/types'
import debug from '../src/debug.ts'
import { E_INVALID_LOCK_CONFIG } from '../src/errors.ts'
import { LockManager } from '../src/lock_manager.ts'
import type { LockConfig, LockService, StoreEntry, StoreFactory } from '../src/types.ts'

/**
 * Binds the lock manager built from `config/lock.ts`
 */
export default class LockProvider {
  #manager?: LockService

  constructor(protected app: ApplicationService) {}

  register() {
    this.app.container.singleton('lock.manager', async () => {
      const config = this.app.config.get<LockConfig<Record<string, StoreEntry>> | undefined>('lock')
      if (!config) {
        throw new E_INVALID_LOCK_CONFIG(
          'Missing "config/lock.ts". Run "node ace configure adonis-lock" to create it'
        )
      }
      const stores: Record<string, StoreFactory> = {}
      for (const [name, entry] of Object.entries(config.stores)) {
        stores[name] = await this.#resolveStore(name, entry)
      }
      const emitter = await this.app.container.make('emitter')
      const logger = await this.app.container.make('logger')
      this.#manager = new LockManager(
        { ...config, stores },
        { emitter, logger: logger.child({ pkg: 'adonis-lock' }) }
      ) as LockService
      return this.#manager
    })
  }

  /**
   * A store whose backend is missing (Lucid not installed yet, the Redis
   * provider loaded in some environments only) fails when it is used,
   * not when the manager is built: the other stores keep working
   */
  async #resolveStore(name: string, entry: StoreEntry): Promise<StoreFactory> {
    try {
      return (
        (await configProvider.resolve<StoreFactory>(this.app, entry)) ?? (entry as StoreFactory)
      )
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error)
      debug('store "%s" could not be configured: %s', name, reason)
      return {
        driver: {
          factory: () => {
            throw new E_INVALID_LOCK_CONFIG(
              `The "${name}" lock store could not be configured: ${reason}`,
              { cause: error }
            )
          },
        },
      }
    }
  }

  async shutdown() {
    await this.#manager?.close()
  }
}
