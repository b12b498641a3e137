/**
 * `--compare=<rev>`: twins of adonis-lock's contenders running the
 * package's code as it was at another commit, in the same rounds as the
 * current ones. The commit's tree is extracted under tmp/bench-compare/
 * and its own benchmarks/contenders/ are imported unchanged, on this
 * checkout's node_modules.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, realpath, rename, rm, symlink } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { CONTENDERS, contenderById } from '../contenders/main.ts'
import type { BenchTargets, Contender, LockSession, RetryMode } from '../contenders/contender.ts'

const ROOT = new URL('../../', import.meta.url)
const TREES = new URL('tmp/bench-compare/', ROOT)

/**
 * What this file needs of a contender of the other commit; anything else
 * its interface has or lacks is left alone
 */
interface OtherContender {
  id: string
  role: string
  modes: RetryMode[]
  open(targets: BenchTargets, mode: RetryMode): Promise<LockSession>
}

function git(args: string[]): string {
  return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim()
}

function treeOf(sha: string): URL {
  return new URL(`${sha}/`, TREES)
}

/**
 * Extracts the tree of `rev` once (kept for later runs) and links this
 * checkout's node_modules into it; resolves to its short hash
 */
export async function extractRev(rev: string): Promise<string> {
  const sha = git(['rev-parse', '--short', '--verify', `${rev}^{commit}`])
  const tree = treeOf(sha)
  if (!existsSync(new URL('benchmarks/contenders/main.ts', tree))) {
    const partial = new URL(`${sha}.partial/`, TREES)
    await rm(partial, { recursive: true, force: true })
    await rm(tree, { recursive: true, force: true })
    await mkdir(partial, { recursive: true })
    const archive = fileURLToPath(new URL(`${sha}.tar`, TREES))
    git(['archive', '--output', archive, sha])
    execFileSync('tar', ['-xf', archive, '-C', fileURLToPath(partial)])
    await rm(archive)
    await rename(partial, tree)
  }
  const modules = new URL('node_modules', tree)
  if (!existsSync(modules)) {
    await symlink(await realpath(new URL('node_modules', ROOT)), modules, 'dir')
  }
  return sha
}

/**
 * The twin of `current` on `other`, its counterpart at `sha`: the current
 * id, label and baseline with the hash added, so its rows sit next to the
 * current ones and are measured against the same raw baseline
 */
export function twinOf(current: Contender, other: OtherContender, sha: string): Contender {
  return {
    ...current,
    id: `${current.id}@${sha}`,
    label: `${current.label} @${sha}`,
    modes: current.modes.filter((mode) => other.modes.includes(mode)),
    notes: `as \`${current.id}\`, with the package's code and that contender as they were at ${sha}`,
    compared: { of: current.id, sha },
    open: (targets, mode) => other.open(targets, mode),
  }
}

/**
 * Twins of every current `ours` contender that has a counterpart (same id)
 * at `sha`, extracted before by `extractRev`
 */
export async function twinsAt(sha: string): Promise<Contender[]> {
  const main = new URL('benchmarks/contenders/main.ts', treeOf(sha))
  if (!existsSync(main)) throw new Error(`${sha} has no benchmarks/contenders/main.ts`)
  const module = await import(main.href)
  const others = module.CONTENDERS as OtherContender[] | undefined
  if (!Array.isArray(others)) throw new Error(`${sha} has no CONTENDERS in ${main.pathname}`)
  return CONTENDERS.filter((contender) => contender.role === 'ours').flatMap((current) => {
    const other = others.find(
      (candidate) => candidate.id === current.id && candidate.role === 'ours'
    )
    return other ? [twinOf(current, other, sha)] : []
  })
}

/**
 * `contenders` with each twin right after its current contender, those
 * not chosen left out
 */
export function withTwins(contenders: Contender[], twins: Contender[]): Contender[] {
  return contenders.flatMap((contender) => [
    contender,
    ...twins.filter((twin) => twin.compared?.of === contender.id),
  ])
}

/**
 * A current contender or, for `<id>@<sha>`, its twin: how the processes of
 * the contended scenario find what they are asked to open
 */
export async function findContender(id: string): Promise<Contender> {
  const at = id.lastIndexOf('@')
  if (at === -1) return contenderById(id)
  const twins = await twinsAt(id.slice(at + 1))
  const twin = twins.find((candidate) => candidate.id === id)
  if (!twin) throw new Error(`Unknown contender "${id}"`)
  return twin
}
