import { fileURLToPath } from 'node:url'
import env from '#start/env'
import { defineConfig } from '@adonisjs/lucid'

/**
 * Both demo servers open the same SQLite file: the database store shares
 * locks between processes through it
 */
const sqliteFile = env.get(
  'DB_FILE',
  fileURLToPath(new URL('../../../tmp/demo/demo.sqlite', import.meta.url))
)

export default defineConfig({
  connection: 'sqlite',
  connections: {
    sqlite: {
      client: 'better-sqlite3',
      connection: { filename: sqliteFile },
      useNullAsDefault: true,
      migrations: { naturalSort: true, paths: ['database/migrations'] },
      schemaGeneration: { enabled: false },
    },
    pg: {
      client: 'pg',
      connection: { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'adonis_lock_demo' },
      migrations: { naturalSort: true, paths: ['database/migrations'] },
      schemaGeneration: { enabled: false },
    },
  },
})
