import { createHash } from 'node:crypto'
import type { Knex } from 'knex'
import type { DialectName } from './dialects/main.ts'

/**
 * A statement as knex compiled it: `?` placeholders, the binding name of
 * each, and the name it is prepared under (none: parsed on every run)
 */
interface CompiledStatement {
  sql: string
  names: string[]
  name?: string
}

/**
 * At most this many statements are compiled once and prepared (the lock's,
 * and the semaphore's per limit in use); past that they run unprepared
 */
const MAX_CACHED = 200

/**
 * The statement's plan or name is gone on that connection (table altered,
 * or a pooler in transaction mode): the next run prepares it under a new name
 */
const STALE_STATEMENT_CODES = new Set(['0A000', '26000'])

const BINDING = /(?<!:):(\w+)/g

type MysqlCallback = (error: Error | null, rows: unknown, fields: unknown) => void

interface MysqlConnection {
  execute(sql: string, values: unknown[], callback: MysqlCallback): void
  query(sql: string, values: unknown[], callback: MysqlCallback): void
}

interface PostgresConnection {
  query(config: { text: string; values: unknown[]; name?: string }): Promise<unknown>
}

interface SqliteStatement {
  reader: boolean
  all(...values: unknown[]): unknown[]
  run(...values: unknown[]): unknown
}

interface SqliteConnection {
  prepare(sql: string): SqliteStatement
}

/**
 * better-sqlite3 statements of each connection, by SQL
 */
const sqliteStatements = new WeakMap<SqliteConnection, Map<string, SqliteStatement>>()

/**
 * Runs the store's statements on a connection of the knex pool through the
 * driver's own call: prepared (pg's `query({ name })`, mysql2's `execute`,
 * kept better-sqlite3 statements), else as text (PostgreSQL with
 * `preparedStatements: false`, or past MAX_CACHED statements). Results
 * have the shape `knex.raw` gives.
 */
export class Statements {
  #knex: Knex
  #dialect: DialectName
  #prepared: boolean
  #compiled = new Map<string, CompiledStatement>()
  /**
   * Bumped when a prepared statement went stale, to prepare it anew
   */
  #generation = 0

  constructor(knex: Knex, dialect: DialectName, prepared: boolean) {
    this.#knex = knex
    this.#dialect = dialect
    this.#prepared = prepared
  }

  /**
   * Whether statements of this knex client can run prepared. The `mysql`
   * and `sqlite3` drivers cannot: they run through `knex.raw`.
   */
  static supports(knex: Knex, dialect: DialectName): boolean {
    const driver = knex.client.driverName
    if (dialect === 'mysql') return driver === 'mysql2'
    if (dialect === 'sqlite') return driver === 'better-sqlite3'
    return true
  }

  async run(sql: string, bindings: Record<string, unknown>): Promise<unknown> {
    const statement = this.#compile(sql)
    const values = statement.names.map((name) => bindings[name] ?? null)
    if (this.#dialect === 'postgres') return this.#runPostgres(statement, values)
    return this.#onPoolConnection(statement.sql, values, statement.name)
  }

  async #runPostgres(statement: CompiledStatement, values: unknown[]): Promise<unknown> {
    const generation = this.#generation
    const name = statement.name && `${statement.name}_${generation}`
    try {
      return await this.#onPoolConnection(statement.sql, values, name)
    } catch (error) {
      const code = (error as { code?: string }).code
      if (statement.name && STALE_STATEMENT_CODES.has(code!) && this.#generation === generation) {
        this.#generation++
      }
      throw error
    }
  }

  /**
   * knex has no public call that runs a prepared statement alone (`knex.raw`
   * builds and converts the query again on every run), so this borrows a
   * pool connection as knex's own runner does and uses the driver's call.
   * `preparedAs`: the name to prepare under; none runs the text as is.
   */
  async #onPoolConnection(sql: string, values: unknown[], preparedAs: string | undefined) {
    const client = this.#knex.client
    const connection = await client.acquireConnection()
    try {
      client.emit('query', {
        __knexUid: connection.__knexUid,
        __knexTxId: connection.__knexTxId,
        method: 'raw',
        sql,
        bindings: values,
      })
      if (this.#dialect === 'postgres') {
        return await (connection as PostgresConnection).query({
          text: sql,
          values,
          name: preparedAs,
        })
      }
      const prepared = preparedAs !== undefined
      if (this.#dialect === 'mysql') return await runMysql(connection, sql, values, prepared)
      return runSqlite(connection, sql, values, prepared)
    } finally {
      await client.releaseConnection(connection)
    }
  }

  /**
   * knex turns the named bindings into `?` placeholders; the binding names
   * stand in for their values, so `bindings` says which name goes where
   */
  #compile(sql: string): CompiledStatement {
    const cached = this.#compiled.get(sql)
    if (cached) return cached
    const names = Object.fromEntries([...sql.matchAll(BINDING)].map(([, name]) => [name, name]))
    const query = this.#knex.raw(sql, names).toSQL()
    /**
     * PostgreSQL takes `$1` placeholders: the driver gets them as knex
     * would send them
     */
    const compiled = this.#dialect === 'postgres' ? query.toNative() : query
    const statement: CompiledStatement = {
      sql: compiled.sql,
      names: compiled.bindings as string[],
    }
    if (this.#compiled.size < MAX_CACHED) {
      if (this.#prepared) {
        statement.name = `adonis_lock_${createHash('sha256').update(statement.sql).digest('hex').slice(0, 24)}`
      }
      this.#compiled.set(sql, statement)
    }
    return statement
  }
}

/**
 * mysql2 prepares a statement on its first `execute` on the connection
 * and keeps it there; `query` sends it as text
 */
function runMysql(connection: MysqlConnection, sql: string, values: unknown[], prepared: boolean) {
  return new Promise<unknown>((resolve, reject) => {
    const callback: MysqlCallback = (error, rows, fields) => {
      if (error) reject(error)
      else resolve([rows, fields])
    }
    if (prepared) connection.execute(sql, values, callback)
    else connection.query(sql, values, callback)
  })
}

/**
 * better-sqlite3 compiles a statement when it is prepared: kept, it runs
 * again without that
 */
function runSqlite(connection: SqliteConnection, sql: string, values: unknown[], keep: boolean) {
  let statements = sqliteStatements.get(connection)
  if (!statements) {
    statements = new Map()
    sqliteStatements.set(connection, statements)
  }
  let statement = statements.get(sql)
  if (!statement) {
    statement = connection.prepare(sql)
    if (keep) statements.set(sql, statement)
  }
  return statement.reader ? statement.all(...values) : statement.run(...values)
}
