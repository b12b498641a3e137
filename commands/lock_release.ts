import { args, flags } from '@adonisjs/core/ace'
import { LockCommand, readLockState } from './_base.ts'

/**
 * `node ace lock:release <key>`: force-releases a lock whoever holds it,
 * e.g. after a crashed process left one without expiry
 */
export default class LockRelease extends LockCommand {
  static commandName = 'lock:release'
  static description = 'Force release a lock, whoever holds it'
  static help = [
    'The holder loses the lock: its release() and extend() then fail with E_LOCK_NOT_OWNED',
    '```',
    '{{ binaryName }} lock:release order.processing.42',
    '{{ binaryName }} lock:release order.processing.42 --store=redis --force',
    '```',
  ]

  @args.string({ description: 'Lock key, as given to createLock()' })
  declare key: string

  @flags.boolean({ description: 'Release without asking for confirmation' })
  declare force?: boolean

  async run() {
    const factory = await this.factory()
    if (!factory) return
    let lock
    try {
      lock = factory.createLock(this.key)
    } catch (error) {
      return this.fail(error)
    }
    const store = factory.options.storeName

    let state
    try {
      state = await readLockState(factory.store, lock.storeKey)
    } catch (error) {
      return this.fail(error, `inspect "${this.key}"`)
    }
    if (!state.held) {
      this.warnIfMemory(factory)
      this.logger.info(`Lock "${this.key}" is not held on store "${store}": nothing to release`)
      return
    }

    if (!this.force) {
      /**
       * A script must say --force: there is nobody to answer
       */
      if (!process.stdin.isTTY) {
        this.exitCode = 1
        this.logger.error(
          `Not releasing lock "${this.key}" without confirmation: re-run with --force`
        )
        return
      }
      const holder = state.owner ? ` held by ${state.owner}` : ''
      const confirmed = await this.prompt.confirm(
        `Force release lock "${this.key}"${holder} on store "${store}"?`
      )
      if (!confirmed) {
        this.logger.info('Nothing released')
        return
      }
    }

    try {
      await lock.forceRelease()
    } catch (error) {
      return this.fail(error)
    }
    this.logger.success(`Released lock "${this.key}" on store "${store}"`)
  }
}
