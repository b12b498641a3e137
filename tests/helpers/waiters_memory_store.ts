import { MemoryStore } from '../../src/stores/memory.ts'
import type { Handoff, LockClaim } from '../../src/types.ts'
import { Waiters } from '../../src/waiting/main.ts'

/**
 * The memory store whose waiters stand in the shared waiting line
 * (src/waiting) instead of its own, as the Redis and database stores' do:
 * lock waiters under the key, slot waiters under a line of their own, each
 * woken by its releases
 */
export class WaitersMemoryStore extends MemoryStore {
  waiters = new Waiters()

  // @ts-expect-error the shared line may resolve with a hand-over
  waitForRelease(
    key: string,
    ms: number,
    signal?: AbortSignal,
    claim?: LockClaim
  ): Promise<Handoff | undefined> {
    return this.waiters.wait(key, ms, signal, claim && { ...claim, store: this })
  }

  hasWaiters(key: string): boolean {
    return this.waiters.has(key)
  }

  async waitForSlot(key: string, ms: number, signal?: AbortSignal, claim?: LockClaim) {
    await this.waiters.wait(`${key}\0slots`, ms, signal, undefined, claim?.waitingSince)
  }

  hasSlotWaiters(key: string): boolean {
    return this.waiters.has(`${key}\0slots`)
  }

  async delete(key: string, owner: string): Promise<void> {
    await super.delete(key, owner)
    this.waiters.wakeFirst(key)
  }

  async deleteSlot(key: string, owner: string): Promise<void> {
    await super.deleteSlot(key, owner)
    this.waiters.wakeFirst(`${key}\0slots`)
  }

  async forceDeleteSlots(key: string): Promise<void> {
    await super.forceDeleteSlots(key)
    this.waiters.wakeFirst(`${key}\0slots`)
  }
}

/**
 * The shared waiting line with hand-overs, on a store that stalls from the
 * first hand-over on (a Redis server that stops answering): the hand-over
 * and every later acquire never answer
 */
export class StallingHandOverStore extends WaitersMemoryStore {
  stalled = false

  async save(key: string, owner: string, ttl: number | null) {
    if (this.stalled) return new Promise<never>(() => {})
    return super.save(key, owner, ttl)
  }

  delete(key: string, owner: string): Promise<void> {
    const handedOver = this.waiters.handOver(
      key,
      this,
      () => {
        this.stalled = true
        return new Promise<never>(() => {})
      },
      (claimOwner) => super.delete(key, claimOwner)
    )
    if (handedOver) return handedOver
    return super.delete(key, owner)
  }
}
