import { createHash } from 'node:crypto'
import type { Knex } from 'knex'
import type { DialectName } from './dialects.ts'

/**
 * A statement as the driver takes it: positional parameters, the names
 * of the bindings they stand for, and the name connections prepare it
 * under (used as such by PostgreSQL; none: parsed on every run)
 */
interface CompiledStatement {
  sql: string
  names: string[]
  name?: string
}

/**
 * At most this many statements are compiled once and prepared: the
 * lock's and the semaphore's per limit in use. Past that, statements (of
 * yet more limits) are compiled on each call and run unprepared, so that
 * no connection prepares an unbounded number.
 */
const MAX_CACHED = 200

/**
 * Quoted identifiers and string literals are copied as they are; `:name`
 * (not a `::` cast) is a binding
 */
const TOKENS = /("(?:[^"]|"")*"|'(?:[^']|'')*'|`(?:[^`]|``)*`)|(?<!:):(\w+)/g

/**
 * The connection cannot run the named statement any more: the table
 * changed under a prepared plan ("cached plan must not change result
 * type"), or the statement is gone server-side, as behind a pooler in
 * transaction mode
 */
const STALE_STATEMENT_CODES = new Set(['0A000', '26000'])

type MysqlCallback = (error: Error | null, rows: unknown, fields: unknown) => void

interface MysqlConnection {
  execute(sql: string, values: unknown[], callback: MysqlCallback): void
  query(sql: string, values: unknown[], callback: MysqlCallback): void
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
 * Runs the store's statements as prepared statements on a connection of
 * the knex pool: the database parses and plans each once per connection
 * instead of on every call, and the named bindings are turned into
 * positional ones once instead of by `knex.raw` on every call. PostgreSQL
 * names them (`knex.client.query`, what knex's own runner calls), MySQL
 * runs them with mysql2's `execute`, SQLite keeps better-sqlite3's
 * compiled statements. Each run is announced as knex's own queries are
 * (`query` events, `DEBUG=knex:query` on PostgreSQL).
 *
 * Results come back in the shape `knex.raw` gives them, which is what the
 * dialects read.
 */
export class PreparedStatements {
  #knex: Knex
  #dialect: DialectName
  #prepared: boolean
  #compiled = new Map<string, CompiledStatement>()

  constructor(knex: Knex, dialect: DialectName, prepared: boolean) {
    this.#knex = knex
    this.#dialect = dialect
    this.#prepared = prepared
  }

  /**
   * Whether statements of this knex client can run prepared here. Only
   * mysql2 and better-sqlite3 prepare: the `mysql` and `sqlite3` drivers
   * run them through `knex.raw`
   */
  static supports(knex: Knex, dialect: DialectName): boolean {
    const driver = knex.client.driverName
    if (dialect === 'mysql') return driver === 'mysql2'
    if (dialect === 'sqlite') return driver === 'better-sqlite3'
    return true
  }

  async run(sql: string, bindings: Record<string, unknown>): Promise<unknown> {
    const statement = this.#compile(sql)
    const values = statement.names.map((name) => bindings[name])
    const client = this.#knex.client
    const connection = await client.acquireConnection()
    try {
      if (this.#dialect === 'postgres') {
        return await this.#runPostgres(connection, statement, values)
      }
      client.emit('query', {
        __knexUid: connection.__knexUid,
        __knexTxId: connection.__knexTxId,
        method: 'raw',
        sql: statement.sql,
        bindings: values,
      })
      const prepared = statement.name !== undefined
      if (this.#dialect === 'mysql') {
        return await runMysql(connection, statement.sql, values, prepared)
      }
      return runSqlite(connection, statement.sql, values, prepared)
    } finally {
      await client.releaseConnection(connection)
    }
  }

  async #runPostgres(connection: any, statement: CompiledStatement, values: unknown[]) {
    try {
      const query = await this.#knex.client.query(connection, {
        method: 'raw',
        sql: statement.sql,
        bindings: values,
        options: statement.name ? { name: statement.name } : undefined,
      })
      return query.response
    } catch (error) {
      if (statement.name && STALE_STATEMENT_CODES.has((error as { code?: string }).code!)) {
        /**
         * pg would keep using the name on this connection: the pool
         * destroys it instead (knex checks this mark before reuse)
         */
        connection.__knex__disposed = error
      }
      throw error
    }
  }

  #compile(sql: string): CompiledStatement {
    const cached = this.#compiled.get(sql)
    if (cached) return cached
    const names: string[] = []
    const text = sql.replace(TOKENS, (token, quoted: string | undefined, name: string) => {
      if (quoted) return token
      if (this.#dialect !== 'postgres') {
        names.push(name)
        return '?'
      }
      let position = names.indexOf(name)
      if (position === -1) position = names.push(name) - 1
      return `$${position + 1}`
    })
    const statement: CompiledStatement = { sql: text, names }
    if (this.#compiled.size < MAX_CACHED) {
      if (this.#prepared) {
        statement.name = `adonis_lock_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`
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
export function runMysql(
  connection: MysqlConnection,
  sql: string,
  values: unknown[],
  prepared: boolean
) {
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
