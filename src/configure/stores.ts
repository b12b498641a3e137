/**
 * A package `node ace configure adonis-lock` installs and configures for
 * a store
 */
export interface Backend {
  pkg: string
  provider: string
  /**
   * Flags `node ace configure <pkg>` needs when it cannot ask
   */
  configureHint: string
}

export interface StoreEntryTemplate {
  label: string
  /**
   * Comment above the store in config/lock.ts
   */
  comment: string
  initializer: string
  backend?: Backend
}

/**
 * The built-in stores, in the order they are offered and written
 */
export const STORES = {
  redis: {
    label: 'redis: shared by every process and server (@adonisjs/redis)',
    comment: 'Locks in Redis, on the default connection of config/redis.ts',
    initializer: 'stores.redis()',
    backend: {
      pkg: '@adonisjs/redis',
      provider: '@adonisjs/redis/redis_provider',
      configureHint: '',
    },
  },
  database: {
    label: 'database: a SQL table, shared by every process and server (@adonisjs/lucid)',
    comment: 'Locks in a SQL table, on the default connection of config/database.ts',
    initializer: "stores.database({ tableName: 'locks' })",
    backend: {
      pkg: '@adonisjs/lucid',
      provider: '@adonisjs/lucid/database_provider',
      configureHint: ' --db=<sqlite|postgres|mysql>',
    },
  },
  memory: {
    label: 'memory: this process only, for tests and single-process apps',
    comment: "Locks in this process' memory: for tests and single-process apps",
    initializer: 'stores.memory()',
  },
} satisfies Record<string, StoreEntryTemplate>

export type KnownStore = keyof typeof STORES
export const KNOWN_STORES = Object.keys(STORES) as KnownStore[]

/**
 * What a non-interactive `node ace add adonis-lock` without `--store`
 * configures: the only store that boots without another package, a
 * server or a migration
 */
export const DEFAULT_STORE: KnownStore = 'memory'

export function isKnownStore(name: string): name is KnownStore {
  return Object.hasOwn(STORES, name)
}

/**
 * The entry of a built-in store in config/lock.ts, with its comment
 */
export function storeEntry(name: KnownStore, indent: string): string {
  const { comment, initializer } = STORES[name]
  return [`/**`, ` * ${comment}`, ` */`, `${name}: ${initializer}`]
    .map((line) => indent + line)
    .join('\n')
}
