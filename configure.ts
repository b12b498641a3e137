import { readdir, readFile, writeFile } from 'node:fs/promises'
import type Configure from '@adonisjs/core/commands/configure'
import type { IndentationText, Node, ObjectLiteralExpression, SourceFile } from 'ts-morph'
import { stubsRoot } from './stubs/main.ts'
import { configureReplayCache } from './src/configure/cache.ts'

type Codemods = Awaited<ReturnType<Configure['createCodemods']>>
type Project = NonNullable<Awaited<ReturnType<Codemods['getTsMorphProject']>>>

interface Backend {
  pkg: string
  provider: string
  /**
   * Flags `node ace configure <pkg>` needs when it cannot ask
   */
  configureHint: string
}

interface StoreEntryTemplate {
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
const STORES = {
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

type KnownStore = keyof typeof STORES
const KNOWN_STORES = Object.keys(STORES) as KnownStore[]

/**
 * What a non-interactive `node ace add adonis-lock` without `--store`
 * configures: the only store that boots without another package, a
 * server or a migration
 */
const DEFAULT_STORE: KnownStore = 'memory'

const STORES_PROMPT = 'Select the lock stores you want to use'
const MIDDLEWARE_PROMPT = 'Register the "lock" named middleware (blocks duplicate requests)?'

/**
 * `node ace add adonis-lock` / `node ace configure adonis-lock`
 *
 * Flags: `--store=redis,database,memory` (repeatable), `--install` /
 * `--no-install`, `--middleware` / `--no-middleware`. What a flag does
 * not say is asked when there is a terminal, else defaulted out loud.
 */
export async function configure(command: Configure) {
  const logger = command.logger
  const interactive = Boolean(process.stdin.isTTY)

  const requested = parseStoresFlag(command.parsedFlags.store)
  if (typeof requested === 'string') {
    command.exitCode = 1
    logger.error(requested)
    return
  }
  const installFlag = parseBooleanFlag(command.parsedFlags.install)
  const middlewareFlag = parseBooleanFlag(command.parsedFlags.middleware)

  const codemods = await command.createCodemods()
  const project = await codemods.getTsMorphProject()
  const configPath = command.app.configPath('lock.ts')
  const configExists = (await readText(configPath)) !== undefined
  const configFile = configExists && project ? loadSourceFile(project, configPath) : undefined
  if (configExists && !configFile && !codemods.overwriteExisting) {
    command.exitCode = 1
    logger.error(
      'Cannot read config/lock.ts without "@adonisjs/assembler": install it, or re-run with --force to overwrite the file'
    )
    return
  }
  const existingStores = configFile ? readConfiguredStores(configFile) : undefined

  /**
   * The stores asked for now, first one = the default store
   */
  let chosen: KnownStore[]
  if (requested) {
    chosen = requested
  } else if (interactive) {
    chosen = await command.prompt.multiple(
      STORES_PROMPT,
      KNOWN_STORES.map((name) => ({ name, message: STORES[name].label })),
      { validate: (value) => (value.length ? true : 'Select at least one store') }
    )
  } else if (existingStores) {
    chosen = []
    logger.info(
      `No --store flag and no terminal to ask: keeping the stores of config/lock.ts (${existingStores.join(', ')})`
    )
  } else {
    chosen = [DEFAULT_STORE]
    logger.warning(
      `No --store flag and no terminal to ask: configuring the "${DEFAULT_STORE}" store. Its locks are not shared between processes; for that, run "node ace configure adonis-lock --store=redis" (or --store=database)`
    )
  }

  const configured = await writeConfig(command, codemods, configFile, existingStores, chosen)
  if (!configured) return

  await codemods.updateRcFile((rcFile) => {
    rcFile.addProvider('adonis-lock/lock_provider')
    rcFile.addCommand('adonis-lock/commands')
  })

  if (configured.includes('database')) await makeMigration(command, codemods)

  const defaultStore = await pickDefaultStore(command, chosen, configured)
  await codemods.defineEnvVariables({ LOCK_STORE: defaultStore })
  await defineStoreEnum(command, codemods, project, configured)

  await registerMiddleware(command, codemods, middlewareFlag, interactive)
  await ensureBackends(command, codemods, configured, installFlag, interactive)
  const cache = parseBooleanFlag(command.parsedFlags.cache)
  await configureReplayCache(command, codemods, { cache, install: installFlag, interactive })
}

/**
 * Writes config/lock.ts, or adds the missing stores to the existing one.
 * Re-running adds stores and never drops one: LOCK_STORE may name any
 * store configured before (in .env or in the deployment's environment),
 * and the app must keep booting with it. Returns the configured stores,
 * in the file's order.
 */
async function writeConfig(
  command: Configure,
  codemods: Codemods,
  configFile: SourceFile | undefined,
  existingStores: string[] | undefined,
  chosen: KnownStore[]
): Promise<string[] | undefined> {
  const wanted = unique([...(existingStores ?? []), ...chosen, 'memory'])

  if (!configFile || codemods.overwriteExisting) {
    const written = KNOWN_STORES.filter((name) => wanted.includes(name))
    const custom = wanted.filter((name) => !isKnownStore(name))
    if (custom.length) {
      command.logger.warning(
        `Overwriting config/lock.ts drops the custom stores ${custom.join(', ')}: add them back`
      )
    }
    /**
     * The stub engine eats the line break before a placeholder
     */
    const storeEntries = '\n' + written.map((name) => `${storeEntry(name, '    ')},`).join('\n\n')
    await makeUsingStub(codemods, 'config/lock.stub', { storeEntries })
    return written
  }

  const missing = wanted.filter(
    (name): name is KnownStore => isKnownStore(name) && !existingStores!.includes(name)
  )
  if (!missing.length) return existingStores
  if (!(await addStores(configFile, missing))) {
    command.exitCode = 1
    command.logger.error(
      `Cannot find the "stores" object of config/lock.ts. Add ${missing
        .map((name) => `"${name}: ${STORES[name].initializer}"`)
        .join(', ')} to it, or re-run with --force to overwrite the file`
    )
    return undefined
  }
  command.logger.action('update config/lock.ts file').succeeded()
  return readConfiguredStores(configFile)
}

/**
 * `--store=redis --store=database` and `--store=redis,database` alike.
 * Undefined without the flag, a message for a bad value.
 */
function parseStoresFlag(value: unknown): KnownStore[] | undefined | string {
  if (value === undefined) return undefined
  const values = (Array.isArray(value) ? value : [value]).flatMap((entry) =>
    typeof entry === 'string' ? entry.split(',') : [entry]
  )
  if (values.some((entry) => typeof entry !== 'string')) {
    return `The --store flag needs a value: --store=${KNOWN_STORES.join('|')}`
  }
  const names = unique((values as string[]).map((entry) => entry.trim()).filter(Boolean))
  const unknown = names.filter((name) => !isKnownStore(name))
  if (unknown.length) {
    return `Unknown lock store ${unknown.map((name) => `"${name}"`).join(', ')}. Supported stores: ${KNOWN_STORES.join(', ')}`
  }
  if (!names.length) return `The --store flag needs a value: --store=${KNOWN_STORES.join('|')}`
  return names as KnownStore[]
}

/**
 * `--install` / `--no-install`, also as forwarded by `node ace add`
 * (`--install true`)
 */
function parseBooleanFlag(value: unknown): boolean | undefined {
  if (value === 'true') return true
  if (value === 'false') return false
  return typeof value === 'boolean' ? value : undefined
}

function isKnownStore(name: string): name is KnownStore {
  return Object.hasOwn(STORES, name)
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)]
}

function loadSourceFile(project: Project, path: string): SourceFile | undefined {
  return project.getSourceFile(path) ?? project.addSourceFileAtPathIfExists(path)
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf-8')
  } catch {
    return undefined
  }
}

/**
 * The `stores: { ... }` object of the `defineConfig({ ... })` call
 */
function findStoresObject(file: SourceFile): ObjectLiteralExpression | undefined {
  const call = file
    .getDescendants()
    .find(
      (node) => isKind(node, 'CallExpression') && node.getExpression().getText() === 'defineConfig'
    )
  const config = call && isKind(call, 'CallExpression') ? call.getArguments()[0] : undefined
  if (!config || !isKind(config, 'ObjectLiteralExpression')) return undefined
  const property = config.getProperty('stores')
  const stores =
    property && isKind(property, 'PropertyAssignment') ? property.getInitializer() : undefined
  return stores && isKind(stores, 'ObjectLiteralExpression') ? stores : undefined
}

/**
 * Store names of an existing config/lock.ts, custom ones included
 */
function readConfiguredStores(file: SourceFile): string[] {
  const stores = findStoresObject(file)
  if (!stores) return []
  return stores.getProperties().flatMap((property) => {
    if (
      !isKind(property, 'PropertyAssignment') &&
      !isKind(property, 'ShorthandPropertyAssignment')
    ) {
      return []
    }
    return [property.getName().replace(/^(['"])(.*)\1$/, '$2')]
  })
}

/**
 * Adds stores to an existing config/lock.ts, keeping `memory` last and
 * everything else the user wrote
 */
async function addStores(file: SourceFile, names: KnownStore[]): Promise<boolean> {
  const stores = findStoresObject(file)
  if (!stores) return false
  /**
   * Indented as prettier does, without reformatting the user's code
   */
  file.getProject().manipulationSettings.set({ indentationText: '  ' as IndentationText })
  for (const name of names) {
    const properties = stores.getProperties()
    const memory = stores.getProperty('memory')
    stores.insertProperty(
      memory ? properties.indexOf(memory) : properties.length,
      storeEntry(name, '')
    )
  }
  await file.save()
  return true
}

/**
 * The stub engine trims its output: give the file back the final line
 * break prettier (and so the app's lint) wants
 */
async function makeUsingStub(codemods: Codemods, stub: string, state: Record<string, unknown>) {
  const output = await codemods.makeUsingStub(stubsRoot, stub, state)
  if (output.status !== 'skipped' && !output.contents.endsWith('\n')) {
    await writeFile(output.destination, `${output.contents}\n`)
  }
}

/**
 * The entry of a built-in store in config/lock.ts, with its comment
 */
function storeEntry(name: KnownStore, indent: string): string {
  const { comment, initializer } = STORES[name]
  return [`/**`, ` * ${comment}`, ` */`, `${name}: ${initializer}`]
    .map((line) => indent + line)
    .join('\n')
}

async function makeMigration(command: Configure, codemods: Codemods) {
  const folder = command.app.migrationsPath()
  const existing = await readdir(folder).catch(() => [] as string[])
  const previous = existing.find((fileName) => fileName.endsWith('_create_locks_table.ts'))
  if (previous) {
    command.logger
      .action(`create ${command.app.relativePath(folder)}/..._create_locks_table.ts`)
      .skipped(`${previous} exists`)
    return
  }
  await makeUsingStub(codemods, 'make/migration/locks.stub', {
    entity: command.app.generators.createEntity('locks'),
    migration: {
      folder: command.app.relativePath(folder),
      fileName: `${Date.now()}_create_locks_table.ts`,
    },
  })
}

/**
 * LOCK_STORE: the first store asked for. Without one, the current value
 * stays when it is still a configured store.
 */
async function pickDefaultStore(command: Configure, chosen: string[], configured: string[]) {
  if (chosen.length) {
    if (chosen.length > 1) {
      command.logger.info(`LOCK_STORE=${chosen[0]} is the default store; change it in .env`)
    }
    return chosen[0]
  }
  const env = await readText(command.app.makePath('.env'))
  const current = env?.match(/^LOCK_STORE=(.*)$/m)?.[1]?.trim()
  return current && configured.includes(current) ? current : configured[0]
}

/**
 * `LOCK_STORE: Env.schema.enum([...])` listing every configured store,
 * replacing the rule a previous run wrote (the codemod only adds)
 */
async function defineStoreEnum(
  command: Configure,
  codemods: Codemods,
  project: Project | undefined,
  stores: string[]
) {
  const rule = `Env.schema.enum([${stores.map((name) => `'${name}'`).join(', ')}] as const)`
  const file = project ? loadSourceFile(project, command.app.startPath('env.ts')) : undefined
  const create = file
    ?.getDescendants()
    .find(
      (node) => isKind(node, 'CallExpression') && node.getExpression().getText() === 'Env.create'
    )
  const schema = create && isKind(create, 'CallExpression') ? create.getArguments()[1] : undefined
  const existing =
    schema && isKind(schema, 'ObjectLiteralExpression')
      ? schema.getProperty('LOCK_STORE')
      : undefined
  if (file && existing && isKind(existing, 'PropertyAssignment')) {
    if (existing.getInitializer()?.getText() !== rule) {
      existing.setInitializer(rule)
      await file.save()
      command.logger.action('update start/env.ts file').succeeded()
    }
    return
  }
  await codemods.defineEnvValidations({
    leadingComment: 'Variables for configuring the lock package',
    variables: { LOCK_STORE: rule },
  })
}

async function registerMiddleware(
  command: Configure,
  codemods: Codemods,
  flag: boolean | undefined,
  interactive: boolean
) {
  const register =
    flag ??
    (interactive ? await command.prompt.confirm(MIDDLEWARE_PROMPT, { default: false }) : false)
  if (!register) {
    if (flag === undefined && !interactive) {
      command.logger.info(
        'Skipped the "lock" named middleware: re-run with --middleware to register it in start/kernel.ts'
      )
    }
    return
  }
  await codemods.registerMiddleware('named', [
    { name: 'lock', path: 'adonis-lock/lock_middleware' },
  ])
}

/**
 * The redis and database stores need @adonisjs/redis / @adonisjs/lucid
 * installed and configured: offer to do it, or say what to run
 */
async function ensureBackends(
  command: Configure,
  codemods: Codemods,
  stores: string[],
  installFlag: boolean | undefined,
  interactive: boolean
) {
  const rcFile = (await readText(command.app.makePath('adonisrc.ts'))) ?? ''
  const manifest = JSON.parse((await readText(command.app.makePath('package.json'))) ?? '{}')
  const dependencies = { ...manifest.dependencies, ...manifest.devDependencies }

  for (const name of stores) {
    const backend: Backend | undefined = isKnownStore(name)
      ? (STORES[name] as StoreEntryTemplate).backend
      : undefined
    if (!backend || rcFile.includes(backend.provider)) continue

    const installed = Object.hasOwn(dependencies, backend.pkg)
    command.logger.warning(
      `The ${name} store needs "${backend.pkg}", which is ${installed ? 'installed but not configured' : 'not installed'}`
    )
    const proceed =
      installFlag ??
      (interactive
        ? await command.prompt.confirm(
            `${installed ? 'Configure' : 'Install and configure'} "${backend.pkg}" now?`
          )
        : false)

    if (!proceed) {
      if (!installed) {
        await codemods.listPackagesToInstall([{ name: backend.pkg, isDevDependency: false }])
      }
      command.logger.info(
        `${installed ? 'Run' : 'Then run'}: node ace configure ${backend.pkg}${backend.configureHint}`
      )
      continue
    }

    if (!installed) {
      const done = await codemods.installPackages([{ name: backend.pkg, isDevDependency: false }])
      if (!done) {
        command.exitCode = 1
        continue
      }
    }
    if (backend.configureHint && !interactive) {
      command.logger.info(`Now run: node ace configure ${backend.pkg}${backend.configureHint}`)
      continue
    }
    const ace = await command.app.container.make('ace')
    const result = await ace.exec('configure', [backend.pkg, ...(installFlag ? ['--install'] : [])])
    if (result.exitCode) command.exitCode = result.exitCode
  }
}

/**
 * ts-morph's kind guards without importing ts-morph at runtime: it is
 * the app's dependency (through @adonisjs/assembler), not ours
 */
type KindMap = {
  CallExpression: import('ts-morph').CallExpression
  ObjectLiteralExpression: ObjectLiteralExpression
  PropertyAssignment: import('ts-morph').PropertyAssignment
  ShorthandPropertyAssignment: import('ts-morph').ShorthandPropertyAssignment
}
function isKind<K extends keyof KindMap>(node: Node, kind: K): node is Node & KindMap[K] {
  return node.getKindName() === kind
}
