import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { AppFactory } from '@adonisjs/core/factories/app'
import { Emitter } from '@adonisjs/core/events'
import { Logger } from '@adonisjs/core/logger'
import { Database } from '@adonisjs/lucid/database'
import type { BaseSchema } from '@adonisjs/lucid/schema'
import type { QueryClientContract } from '@adonisjs/lucid/types/database'
import type { Knex } from 'knex'
import { stubsRoot } from '../../stubs/main.ts'
import { SERVICES, serviceAvailable } from './services.ts'

export type TestDialect = 'postgres' | 'mysql' | 'sqlite'

export const TEST_DIALECTS: TestDialect[] = ['postgres', 'mysql', 'sqlite']

export const DIALECT_LABELS: Record<TestDialect, string> = {
  postgres: 'PostgreSQL',
  mysql: 'MariaDB',
  sqlite: 'SQLite',
}

export const TMP_DIR = new URL('../../tmp/databases/', import.meta.url)

/**
 * Whether the real server of a dialect is there (SQLite always is)
 */
export function dialectAvailable(dialect: TestDialect): Promise<boolean> {
  if (dialect === 'sqlite') return Promise.resolve(true)
  return serviceAvailable(dialect === 'postgres' ? 'postgres' : 'mariadb')
}

export function uniqueName(label: string): string {
  return `${label}_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
}

/**
 * A fresh SQLite file in tmp/, removed by `removeSqliteFile`
 */
export async function sqliteFile(): Promise<string> {
  await mkdir(TMP_DIR, { recursive: true })
  return fileURLToPath(new URL(`${uniqueName('locks')}.sqlite`, TMP_DIR))
}

export async function removeSqliteFile(file: string) {
  for (const suffix of ['', '-journal', '-wal', '-shm'])
    await rm(`${file}${suffix}`, { force: true })
}

/**
 * knex (and Lucid) connection config of a dialect. JSON-safe, so workers
 * get it as is.
 */
export function connectionConfig(
  dialect: TestDialect,
  options: { sqliteFile?: string; sqliteClient?: 'better-sqlite3' | 'sqlite3' } = {}
): Knex.Config & { client: string } {
  if (dialect === 'postgres') {
    const { host, port, user, database } = SERVICES.postgres
    return { client: 'pg', connection: { host, port, user, database } }
  }
  if (dialect === 'mysql') {
    const { host, port, user, password, database } = SERVICES.mariadb
    return { client: 'mysql2', connection: { host, port, user, password, database } }
  }
  return {
    client: options.sqliteClient ?? 'better-sqlite3',
    connection: { filename: options.sqliteFile! },
    useNullAsDefault: true,
  }
}

/**
 * The migration `node ace configure adonis-lock --store=database` writes,
 * rendered from the real stub by the AdonisJS stubs manager
 */
let rendered: Promise<{ fileName: string; contents: string }> | undefined
export function renderMigration(): Promise<{ fileName: string; contents: string }> {
  rendered ??= (async () => {
    const app = new AppFactory().create(new URL('../../tmp/app/', import.meta.url))
    await app.init()
    const stubs = await app.stubs.create()
    const stub = await stubs.build('make/migration/locks.stub', { source: stubsRoot })
    const fileName = `${Date.now()}_create_locks_table.ts`
    const { contents, destination } = await stub.prepare({
      entity: app.generators.createEntity('locks'),
      migration: { folder: 'database/migrations', fileName },
    })
    if (!destination.endsWith(join('database', 'migrations', fileName))) {
      throw new Error(`unexpected migration destination ${destination}`)
    }
    return { fileName, contents }
  })()
  return rendered
}

/**
 * Writes the rendered migration into `directory`, as configure does
 */
export async function writeMigration(directory: URL): Promise<URL> {
  const { fileName, contents } = await renderMigration()
  await mkdir(directory, { recursive: true })
  const file = new URL(fileName, directory)
  await writeFile(file, contents)
  return file
}

/**
 * The class of the rendered migration, loaded once per process
 */
let migrationClass: Promise<typeof BaseSchema> | undefined
export function renderedMigration(): Promise<typeof BaseSchema> {
  migrationClass ??= (async () => {
    const directory = new URL(`migrations_${process.pid}/`, TMP_DIR)
    const file = await writeMigration(directory)
    try {
      const module = await import(file.href)
      return module.default
    } finally {
      await rm(directory, { recursive: true, force: true })
    }
  })()
  return migrationClass
}

/**
 * Runs the rendered migration (`up`, or `down`) on a Lucid connection, for
 * a table of the given name
 */
export async function runLocksMigration(
  client: QueryClientContract,
  tableName: string,
  direction: 'up' | 'down' = 'up'
) {
  const Migration = await renderedMigration()
  const migration = new (class extends Migration {
    protected tableName = tableName
  })(client, 'create_locks_table.ts')
  await (direction === 'up' ? migration.execUp() : migration.execDown())
}

/**
 * A Lucid database with one connection to the dialect's server
 */
export function lucidDatabase(config: Knex.Config & { client: string }) {
  const app = new AppFactory().create(new URL('../../tmp/app/', import.meta.url))
  return new Database(
    { connection: 'primary', connections: { primary: config as any } },
    new Logger({ enabled: false }),
    new Emitter(app)
  )
}

/**
 * A Lucid connection with a fresh locks table created by the real
 * migration; `close()` drops the table and closes everything
 */
export interface TestDatabase {
  dialect: TestDialect
  tableName: string
  config: Knex.Config & { client: string }
  client: QueryClientContract
  close(): Promise<void>
}

export async function openTestDatabase(
  dialect: TestDialect,
  options: { createTable?: boolean; sqliteClient?: 'better-sqlite3' | 'sqlite3' } = {}
): Promise<TestDatabase> {
  const file = dialect === 'sqlite' ? await sqliteFile() : undefined
  const config = connectionConfig(dialect, { sqliteFile: file, sqliteClient: options.sqliteClient })
  const db = lucidDatabase(config)
  const client = db.connection()
  const tableName = uniqueName('locks')
  const createTable = options.createTable ?? true
  try {
    if (createTable) await runLocksMigration(client, tableName)
  } catch (error) {
    await db.manager.closeAll()
    throw error
  }
  return {
    dialect,
    tableName,
    config,
    client,
    async close() {
      try {
        if (createTable) await client.schema.dropTableIfExists(tableName)
      } finally {
        await db.manager.closeAll()
        if (file) await removeSqliteFile(file)
      }
    },
  }
}
