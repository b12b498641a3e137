import { isKnownStore, KNOWN_STORES, type KnownStore } from './stores.ts'
import { unique } from './codemods.ts'

/**
 * `--store=redis --store=database` and `--store=redis,database` alike.
 * Undefined without the flag, a message for a bad value.
 */
export function parseStoresFlag(value: unknown): KnownStore[] | undefined | string {
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
export function parseBooleanFlag(value: unknown): boolean | undefined {
  if (value === 'true') return true
  if (value === 'false') return false
  return typeof value === 'boolean' ? value : undefined
}
