import { configProvider } from '@adonisjs/core'
import type { ApplicationService } from '@adonisjs/core/types'
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
        stores[name] =
          (await configProvider.resolve<StoreFactory>(this.app, entry)) ?? (entry as StoreFactory)
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

  async shutdown() {
    await this.#manager?.close()
  }
}
