import { Env } from '@adonisjs/core/env'

/**
 * Everything has a default, so `node ace` works in this folder as it is;
 * the demo runner sets PORT, LOCK_STORE and DB_FILE for its two servers
 */
export default await Env.create(new URL('../', import.meta.url), {
  NODE_ENV: Env.schema.enum.optional(['development', 'production', 'test'] as const),
  PORT: Env.schema.number.optional(),
  HOST: Env.schema.string.optional({ format: 'host' }),
  APP_KEY: Env.schema.string.optional(),
  LOG_LEVEL: Env.schema.string.optional(),
  LOCK_STORE: Env.schema.enum.optional(['database', 'postgres', 'redis', 'memory'] as const),
  DB_FILE: Env.schema.string.optional(),
})
