import { test } from '@japa/runner'
import { LockFactory } from '../lock_factory.ts'
import type { LockStore } from '../types.ts'
import { registerHandOverLineConformance } from './hand_over_line_conformance.ts'
import { registerHandOverNewcomerConformance } from './hand_over_newcomer_conformance.ts'
import { registerHandOverTurnsConformance } from './hand_over_turns_conformance.ts'
import { storePerTest, type SuiteContext } from './helpers.ts'
import type { StoreSuiteOptions } from './store_suite.ts'

/**
 * What the hand-over tests work with, besides the store of each test
 */
export interface HandOverSuite {
  current: SuiteContext
  fencing: boolean
  /**
   * Whether releases in other processes wake this one's waiters
   */
  wakesOtherProcesses: boolean
  /**
   * Locks on `store` (this test's store by default) under this test's
   * key prefix
   */
  factory(store?: LockStore): LockFactory
  /**
   * Another process's store on the same keys
   */
  peerOf(): Promise<{ store: LockStore; close: () => Promise<void> }>
}

/**
 * For a store that hands a release straight to a waiter of its process
 */
export function registerHandOverConformance(
  name: string,
  options: StoreSuiteOptions,
  skip: string | false
) {
  const { fencing = true } = options

  test.group(`${name} | hand-over to waiters`, (group) => {
    const current = storePerTest(
      group,
      options,
      skip || (!options.handsOver && 'no hand-over'),
      30_000
    )
    const suite: HandOverSuite = {
      current,
      fencing,
      wakesOtherProcesses: options.handsOver?.wakesOtherProcesses ?? true,
      factory: (store = current.store) => new LockFactory(store, { prefix: current.prefix }),
      async peerOf() {
        const create = options.handsOver?.createPeer
        if (create) return create(current.store)
        return { store: await current.other(), close: async () => {} }
      },
    }
    registerHandOverLineConformance(suite)
    registerHandOverNewcomerConformance(suite)
    registerHandOverTurnsConformance(suite)
  })
}
