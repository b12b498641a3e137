/**
 * Prints where a `node --cpu-prof` profile spent its time: self time by
 * function, and the time under (self + callees) the functions of a file.
 *
 *   node --cpu-prof --cpu-prof-dir=tmp/prof --import=@poppinss/ts-exec benchmarks/run.ts \
 *     --quick --only=ours-redis --scenarios=sequential
 *   node --import=@poppinss/ts-exec benchmarks/profile_top.ts tmp/prof/<file>.cpuprofile [filter]
 */
import { readFile } from 'node:fs/promises'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const [file, filter = 'adonis-lock'] = process.argv.slice(2)
if (!file) throw new Error('usage: profile_top.ts <file.cpuprofile> [url filter]')
const profile: Profile = JSON.parse(await readFile(file, 'utf8'))

const byId = new Map(profile.nodes.map((node) => [node.id, node]))
const parent = new Map<number, number>()
for (const node of profile.nodes)
  for (const child of node.children ?? []) parent.set(child, node.id)

const self = new Map<number, number>()
profile.samples.forEach((id, index) => {
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0))
})
const total = [...self.values()].reduce((sum, value) => sum + value, 0)

function label(node: ProfileNode) {
  const url = node.callFrame.url.replace(/^.*\/work\/main\//, '').replace(/^file:\/\//, '')
  return `${node.callFrame.functionName || '(anonymous)'} ${url}:${node.callFrame.lineNumber + 1}`
}

const selfByLabel = new Map<string, number>()
for (const [id, time] of self) {
  const key = label(byId.get(id)!)
  selfByLabel.set(key, (selfByLabel.get(key) ?? 0) + time)
}

/**
 * Time of samples with a frame matching the filter on their stack, by
 * that frame (counted once per sample)
 */
const inclusive = new Map<string, number>()
for (const [id, time] of self) {
  const seen = new Set<string>()
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const node = byId.get(at)!
    if (!node.callFrame.url.includes(filter) && !label(node).includes(filter)) continue
    const key = label(node)
    if (seen.has(key)) continue
    seen.add(key)
    inclusive.set(key, (inclusive.get(key) ?? 0) + time)
  }
}

const percent = (time: number) => `${((time / total) * 100).toFixed(1).padStart(5)}%`
console.log(`total ${(total / 1000).toFixed(0)} ms sampled\n\nself time, top 25:`)
for (const [key, time] of [...selfByLabel].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
  console.log(`${percent(time)}  ${key}`)
}
console.log(`\ninclusive time of frames matching "${filter}", top 25:`)
for (const [key, time] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
  console.log(`${percent(time)}  ${key}`)
}
