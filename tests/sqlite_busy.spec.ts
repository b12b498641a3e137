import { test } from '@japa/runner'
import { createRequire } from 'node:module'
import knex from 'knex'
import { errors, LockFactory } from '../index.ts'
import { DatabaseStore } from '../src/stores/main.ts'
import { openTestDatabase } from './helpers/databases.ts'

/**
 * The driver itself (it ships no types of its own)
 */
interface SqliteConnection {
  exec(sql: string): void
  pragma(sql: string): void
  close(): void
}
const Database = createRequire(import.meta.url)('better-sqlite3') as new (
  filename: string
) => SqliteConnection

test.group('Database store (SQLite) | busy database', () => {
  test('a database another connection keeps locked fails with E_LOCK_STORAGE_ERROR after the busy timeout, then recovers', async ({
    assert,
    cleanup,
  }) => {
    const database = await openTestDatabase('sqlite')
    cleanup(() => database.close())
    const filename = (database.config.connection as { filename: string }).filename
    /**
     * The app's connection, waiting at most 200 ms for a busy database
     */
    const client = knex({
      client: 'better-sqlite3',
      connection: { filename },
      useNullAsDefault: true,
      pool: {
        afterCreate(connection: SqliteConnection, done: (error: null, c: unknown) => void) {
          connection.pragma('busy_timeout = 200')
          done(null, connection)
        },
      },
    })
    cleanup(() => client.destroy())
    const store = new DatabaseStore({ connection: client, tableName: database.tableName })
    cleanup(() => store.close())
    const locks = new LockFactory(store)

    /**
     * Another process in a long write transaction
     */
    const other = new Database(filename)
    cleanup(() => other.close())
    other.exec('BEGIN EXCLUSIVE')

    const lock = locks.createLock('busy', '10s')
    const error = await lock.acquireImmediately().then(
      () => assert.fail('acquired a lock in a database locked by another connection'),
      (reason: unknown) => reason as Error
    )
    assert.instanceOf(error, errors.E_LOCK_STORAGE_ERROR)
    assert.match(String((error.cause as Error)?.message), /locked|busy/i)

    other.exec('COMMIT')
    assert.isTrue(await lock.acquireImmediately())
    await lock.release()
  })
})
