import env from '#start/env'
import { defineConfig, stores } from '../../../src/define_config.ts'

/**
 * In your app: `import { defineConfig, stores } from 'adonis-lock'`, as
 * `node ace add adonis-lock` writes it
 */
export default defineConfig({
  default: env.get('LOCK_STORE', 'database'),
  prefix: 'demo',
  stores: {
    database: stores.database({ connectionName: 'sqlite', tableName: 'locks' }),
    postgres: stores.database({ connectionName: 'pg', tableName: 'locks' }),
    redis: stores.redis({ connectionName: 'main' }),
    memory: stores.memory(),
  },
})
