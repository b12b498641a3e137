import debug from '../../debug.ts'

/**
 * Rows are pruned this long after they expired or were released. Until
 * then a row keeps its fencing value, so a token handed out after the
 * prune (taken from the database clock) is still greater.
 */
export const PRUNE_GRACE = 1000

export const PRUNE_BATCH = 1000

/**
 * A background prune deletes batches until no expired row is left, or for
 * this long at most
 */
const BACKGROUND_PRUNE_BUDGET = 1000

/**
 * Deletes up to `limit` rows expired more than `grace` ms ago; returns how
 * many it deleted
 */
export type PruneBatch = (grace: number, limit: number) => Promise<number>

/**
 * Deletes expired rows: all of them on prune(), and now and then, bounded
 * in time, in the background of successful acquires
 */
export class Pruner {
  #batch: PruneBatch
  #tableName: string
  #interval: number | false
  #nextAt: number
  #running: Promise<void> | undefined

  constructor(batch: PruneBatch, tableName: string, interval: number | false) {
    this.#batch = batch
    this.#tableName = tableName
    this.#interval = interval
    this.#nextAt = interval === false ? Infinity : Date.now() + interval
  }

  prune(): Promise<number> {
    return this.#batches(Infinity)
  }

  /**
   * A prune bounded in time, in the background, at most once per interval
   */
  now() {
    if (this.#running || Date.now() < this.#nextAt) return
    this.#nextAt = Date.now() + (this.#interval as number)
    this.#running = this.#batches(performance.now() + BACKGROUND_PRUNE_BUDGET)
      .then(
        (deleted) => debug('pruned %d expired locks from "%s"', deleted, this.#tableName),
        (error) => debug('pruning "%s" failed: %s', this.#tableName, error)
      )
      .finally(() => (this.#running = undefined))
  }

  async #batches(until: number): Promise<number> {
    let total = 0
    while (true) {
      const deleted = await this.#batch(PRUNE_GRACE, PRUNE_BATCH)
      total += deleted
      if (deleted < PRUNE_BATCH || performance.now() >= until) return total
    }
  }

  /**
   * No more background prunes; waits for the running one
   */
  async stop() {
    this.#nextAt = Infinity
    await this.#running
  }
}
