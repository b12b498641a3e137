/**
 * Writes docs/redis_scripts.md: every Redis script of the store as the
 * server receives it, shared functions included. Run with
 * `npm run docs:redis-scripts`; a test fails while the file is stale.
 */
import { writeFile } from 'node:fs/promises'
import * as scripts from '../src/stores/redis/scripts/main.ts'

export const LISTING_FILE = new URL('../docs/redis_scripts.md', import.meta.url)

export function redisScriptsListing(): string {
  const sections = Object.entries(scripts)
    .filter((entry): entry is [string, scripts.RedisScript] => typeof entry[1] === 'object')
    .map(
      ([name, { lua, sha }]) =>
        `## ${name}\n\n\`src/stores/redis/scripts/${name.toLowerCase()}.ts\`, SHA1 \`${sha}\`\n\n\`\`\`lua\n${lua}\n\`\`\`\n`
    )
  return [
    '# Redis scripts as the server receives them\n',
    'Generated from `src/stores/redis/scripts/` by `npm run docs:redis-scripts`: do not edit by',
    'hand. Each script is written in its own file there; the Lua functions several of them call are',
    'written once in `functions.ts` and put before each script that calls them. A test in',
    '`tests/redis_store.spec.ts` fails while this listing is stale.\n',
    ...sections,
  ].join('\n')
}

if (import.meta.main) await writeFile(LISTING_FILE, redisScriptsListing())
