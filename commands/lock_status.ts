import { args, flags } from '@adonisjs/core/ace'
import { LockCommand, readLockState } from './_base.ts'

/**
 * `node ace lock:status <key>`: who holds a lock, for how long, with
 * which fencing token
 */
export default class LockStatus extends LockCommand {
  static commandName = 'lock:status'
  static description =
    'Show whether a lock is held, by which owner, for how long, and its fencing token'
  static help = [
    'The key is the one given to createLock(), without the prefix of config/lock.ts',
    '```',
    '{{ binaryName }} lock:status order.processing.42',
    '{{ binaryName }} lock:status reports.daily --store=redis --json',
    '```',
  ]

  @args.string({ description: 'Lock key, as given to createLock()' })
  declare key: string

  @flags.boolean({ description: 'Print the status as JSON' })
  declare json?: boolean

  async run() {
    const factory = await this.factory()
    if (!factory) return
    let storeKey: string
    try {
      storeKey = factory.createLock(this.key).storeKey
    } catch (error) {
      return this.fail(error)
    }

    let state
    try {
      state = await readLockState(factory.store, storeKey)
    } catch (error) {
      return this.fail(error, `inspect "${this.key}"`)
    }
    const store = factory.options.storeName

    /**
     * What the store cannot tell (undefined) is left out: `null` says "no
     * expiry" or "no token"
     */
    if (this.json) {
      this.logger.log(
        JSON.stringify({
          key: this.key,
          store,
          storeKey,
          held: state.held,
          owner: state.owner,
          expiresIn: state.expiresIn,
          fencingToken: state.fencingToken,
        })
      )
      return
    }

    this.warnIfMemory(factory)
    if (!state.held) {
      this.logger.info(`Lock "${this.key}" is free (store "${store}", key "${storeKey}")`)
      return
    }
    const unknown = this.colors.dim('unknown (the store cannot tell)')
    const expires =
      state.expiresIn === undefined
        ? unknown
        : state.expiresIn === null
          ? 'never'
          : `in ${state.expiresIn} ms`
    this.logger.info(`Lock "${this.key}" is held (store "${store}", key "${storeKey}")`)
    this.logger.log(`  owner:          ${state.owner ?? unknown}`)
    this.logger.log(`  expires:        ${expires}`)
    this.logger.log(
      `  fencing token:  ${state.fencingToken === undefined ? unknown : (state.fencingToken ?? 'none')}`
    )
  }
}
