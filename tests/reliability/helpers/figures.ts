/**
 * What the reliability suite did (processes, kills, restarts, cases),
 * added up across its files and written to tmp/reliability/figures.json
 * when the test process exits: docs/reliability.md quotes these figures.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const figures: Record<string, number> = {}
const file = fileURLToPath(new URL('../../../tmp/reliability/figures.json', import.meta.url))

let hooked = false

export function count(name: string, by = 1) {
  figures[name] = (figures[name] ?? 0) + by
  if (hooked) return
  hooked = true
  process.once('exit', () => {
    try {
      mkdirSync(dirname(file), { recursive: true })
      writeFileSync(file, `${JSON.stringify(figures, null, 2)}\n`)
    } catch {}
  })
}

/**
 * Keeps the largest value seen
 */
export function highest(name: string, value: number) {
  count(name, 0)
  figures[name] = Math.max(figures[name], value)
}
