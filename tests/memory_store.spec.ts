import { registerStoreSuite } from './store_suite.ts'
import { MemoryStore } from '../src/stores/memory.ts'

registerStoreSuite('Memory store', { createStore: () => new MemoryStore() })
