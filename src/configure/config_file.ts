import type Configure from '@adonisjs/core/commands/configure'
import type { IndentationText, ObjectLiteralExpression, SourceFile } from 'ts-morph'
import { isKind, makeUsingStub, unique, type Codemods } from './codemods.ts'
import { isKnownStore, KNOWN_STORES, STORES, storeEntry, type KnownStore } from './stores.ts'

/**
 * Writes config/lock.ts, or adds the missing stores to the existing one.
 * Re-running adds stores and never drops one: LOCK_STORE may name any
 * store configured before (in .env or in the deployment's environment),
 * and the app must keep booting with it. Returns the configured stores,
 * in the file's order.
 */
export async function writeConfig(
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
export function readConfiguredStores(file: SourceFile): string[] {
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
