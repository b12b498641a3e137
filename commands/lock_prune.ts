import type { LockFactory } from '../src/lock_factory.ts'
import { LockCommand } from './_base.ts'

/**
 * `node ace lock:prune`: deletes the expired locks stores keep around
 * (rows of the database store). Stores that drop expired locks by
 * themselves have nothing to prune.
 */
export default class LockPrune extends LockCommand {
  static commandName = 'lock:prune'
  static description = 'Delete expired locks kept by the stores (rows of the database store)'
  static help = [
    'Prunes every configured store that keeps expired locks, or only --store',
    '```',
    '{{ binaryName }} lock:prune',
    '{{ binaryName }} lock:prune --store=database',
    '```',
  ]

  async run() {
    let manager
    try {
      manager = await this.manager()
    } catch (error) {
      return this.fail(error)
    }
    const names = this.store ? [this.store] : manager.storeNames.map(String)
    let prunable = 0
    for (const name of names) {
      const factory = await this.factory(name)
      if (!factory) continue
      if (!factory.store.prune) {
        if (this.store) {
          this.logger.info(`The "${name}" store keeps no expired locks: nothing to prune`)
        }
        continue
      }
      prunable++
      await this.#prune(name, factory)
    }
    if (!this.store && prunable === 0) {
      this.logger.info('No configured store keeps expired locks: nothing to prune')
    }
  }

  async #prune(name: string, factory: LockFactory) {
    try {
      const count = await factory.store.prune!()
      this.logger.success(
        `Pruned ${count} expired ${count === 1 ? 'lock' : 'locks'} from the "${name}" store`
      )
    } catch (error) {
      this.fail(error, `prune the "${name}" store`)
    }
  }
}
