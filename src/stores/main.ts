export { MemoryStore } from './memory.ts'
export { RedisStore } from './redis.ts'
export { DatabaseStore } from './database.ts'
