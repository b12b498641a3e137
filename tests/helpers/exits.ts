import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../../', import.meta.url))
const script = fileURLToPath(new URL('./standalone_script.ts', import.meta.url))

/**
 * Runs standalone_script.ts with `args`: whether it exited by itself within
 * `ms` after saying `done` (else it is killed), its exit code and output
 */
export function runStandalone(
  args: string[],
  ms = 10_000
): Promise<{ done: boolean; exited: boolean; code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import=@poppinss/ts-exec', script, ...args], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    let done = false
    let timer: NodeJS.Timeout | undefined
    const onOutput = (chunk: Buffer) => {
      output += chunk
      if (!done && output.includes('done\n')) {
        done = true
        timer = setTimeout(() => child.kill('SIGKILL'), ms)
      }
    }
    child.stdout.on('data', onOutput)
    child.stderr.on('data', (chunk: Buffer) => (output += chunk))
    /**
     * A script that never gets to `done` is stopped as well
     */
    const limit = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      clearTimeout(limit)
      resolve({ done, exited: signal === null, code, output })
    })
  })
}
