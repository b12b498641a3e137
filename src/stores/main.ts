export { MemoryStore } from './memory.ts'
export { RedisStore } from './redis/redis_store.ts'
export { DatabaseStore } from './database/database_store.ts'
