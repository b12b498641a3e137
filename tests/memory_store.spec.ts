import { registerStoreSuite } from './store_suite.ts'
import { MemoryStore } from '../src/stores/main.ts'

registerStoreSuite('Memory store', {
  createStore: () => new MemoryStore(),
  processLocal: true,
  processClock: true,
})
