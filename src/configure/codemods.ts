import { readFile, writeFile } from 'node:fs/promises'
import type Configure from '@adonisjs/core/commands/configure'
import type {
  CallExpression,
  Node,
  ObjectLiteralExpression,
  PropertyAssignment,
  ShorthandPropertyAssignment,
  SourceFile,
} from 'ts-morph'
import { stubsRoot } from '../../stubs/main.ts'

/**
 * What the configure helpers share: the codemods of `node ace configure`,
 * reading the app's files, stubs and ts-morph's kind guards
 */
export type Codemods = Awaited<ReturnType<Configure['createCodemods']>>
export type Project = NonNullable<Awaited<ReturnType<Codemods['getTsMorphProject']>>>

export function loadSourceFile(project: Project, path: string): SourceFile | undefined {
  return project.getSourceFile(path) ?? project.addSourceFileAtPathIfExists(path)
}

export async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf-8')
  } catch {
    return undefined
  }
}

/**
 * The stub engine trims its output: give the file back the final line
 * break prettier (and so the app's lint) wants
 */
export async function makeUsingStub(
  codemods: Codemods,
  stub: string,
  state: Record<string, unknown>
) {
  const output = await codemods.makeUsingStub(stubsRoot, stub, state)
  if (output.status !== 'skipped' && !output.contents.endsWith('\n')) {
    await writeFile(output.destination, `${output.contents}\n`)
  }
}

export function unique<T>(values: T[]): T[] {
  return [...new Set(values)]
}

/**
 * ts-morph's kind guards without importing ts-morph at runtime: it is
 * the app's dependency (through @adonisjs/assembler), not ours
 */
type KindMap = {
  CallExpression: CallExpression
  ObjectLiteralExpression: ObjectLiteralExpression
  PropertyAssignment: PropertyAssignment
  ShorthandPropertyAssignment: ShorthandPropertyAssignment
}

export function isKind<K extends keyof KindMap>(node: Node, kind: K): node is Node & KindMap[K] {
  return node.getKindName() === kind
}
