import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'

/**
 * A minimal AdonisJS 7 application, as `npm init adonisjs` would write it
 * (API kit, trimmed): HTTP server, Ace, env validation, Redis and Lucid
 * configured. Kept as strings so the package's own typecheck and lint do
 * not see it as package code.
 */
export interface FixtureOptions {
  database: string
}

export function fixtureFiles({ database }: FixtureOptions): Record<string, string> {
  return {
    'package.json': JSON.stringify(
      {
        name: 'e2e-app',
        version: '0.0.0',
        private: true,
        type: 'module',
        imports: {
          '#start/*': './start/*.js',
          '#config/*': './config/*.js',
          '#exceptions/*': './app/exceptions/*.js',
          '#database/*': './database/*.js',
        },
        dependencies: {
          '@adonisjs/core': '^7.0.0',
          '@adonisjs/lucid': '^22.0.0',
          '@adonisjs/redis': '^10.0.0',
          'pg': '^8.0.0',
          'luxon': '^3.0.0',
        },
        devDependencies: {
          '@adonisjs/assembler': '^8.0.0',
          '@adonisjs/eslint-config': '^3.0.0',
          '@adonisjs/prettier-config': '^1.0.0',
          '@adonisjs/tsconfig': '^2.0.0',
          '@poppinss/ts-exec': '^1.0.0',
          '@types/node': '^24.0.0',
          'eslint': '^10.0.0',
          'prettier': '^3.0.0',
          'typescript': '^5.0.0',
        },
        prettier: '@adonisjs/prettier-config',
      },
      null,
      2
    ),

    'tsconfig.json': JSON.stringify(
      {
        extends: '@adonisjs/tsconfig/tsconfig.app.json',
        compilerOptions: { rootDir: './', outDir: './build' },
      },
      null,
      2
    ),

    'eslint.config.js': `import { configApp } from '@adonisjs/eslint-config'
export default configApp()
`,

    '.env': envFile(database),
    '.env.example': envFile(database),

    'ace.js': `/**
 * JavaScript entrypoint of Ace: runs the TypeScript sources through
 * ts-exec, as the AdonisJS 7 starter kits do
 */
import '@poppinss/ts-exec'

await import('./bin/console.js')
`,

    'adonisrc.ts': `import { defineConfig } from '@adonisjs/core/app'

export default defineConfig({
  commands: [() => import('@adonisjs/core/commands'), () => import('@adonisjs/lucid/commands')],
  providers: [
    () => import('@adonisjs/core/providers/app_provider'),
    () => import('@adonisjs/redis/redis_provider'),
    () => import('@adonisjs/lucid/database_provider'),
  ],
  preloads: [() => import('#start/routes'), () => import('#start/kernel')],
})
`,

    'bin/console.ts': ignitorEntry('ace().handle(process.argv.splice(2))'),
    'bin/server.ts': ignitorEntry('httpServer().start()'),

    'start/env.ts': `import { Env } from '@adonisjs/core/env'

export default await Env.create(new URL('../', import.meta.url), {
  NODE_ENV: Env.schema.enum(['development', 'production', 'test'] as const),
  PORT: Env.schema.number(),
  HOST: Env.schema.string({ format: 'host' }),
  APP_KEY: Env.schema.secret(),
  LOG_LEVEL: Env.schema.string(),
  REDIS_HOST: Env.schema.string({ format: 'host' }),
  REDIS_PORT: Env.schema.number(),
  DB_HOST: Env.schema.string({ format: 'host' }),
  DB_PORT: Env.schema.number(),
  DB_USER: Env.schema.string(),
  DB_DATABASE: Env.schema.string(),
})
`,

    'start/kernel.ts': `import router from '@adonisjs/core/services/router'
import server from '@adonisjs/core/services/server'

server.errorHandler(() => import('#exceptions/handler'))

server.use([])

router.use([() => import('@adonisjs/core/bodyparser_middleware')])

export const middleware = router.named({})
`,

    /**
     * /hold: the pattern of the README. /guarded: the named middleware
     * that configure --middleware registers.
     */
    'start/routes.ts': `import { setTimeout as sleep } from 'node:timers/promises'
import router from '@adonisjs/core/services/router'
import locks from 'adonis-lock/services/main'
import { middleware } from '#start/kernel'

router.get('/health', () => ({ pid: process.pid }))

router.post('/hold/:key', async ({ params, request, response }) => {
  const lock = locks.createLock(\`e2e.\${params.key}\`, '30s')
  if (!(await lock.acquireImmediately())) {
    return response.conflict({ message: 'Being processed' })
  }
  try {
    await sleep(Number(request.input('ms', 500)))
    return { pid: process.pid, fencingToken: lock.fencingToken }
  } finally {
    await lock.release()
  }
})

router
  .post('/guarded', async ({ request }) => {
    await sleep(Number(request.input('ms', 500)))
    return { pid: process.pid }
  })
  .use(middleware.lock({ ttl: '30s' }))
`,

    'app/exceptions/handler.ts': `import app from '@adonisjs/core/services/app'
import { ExceptionHandler, type HttpContext } from '@adonisjs/core/http'

export default class HttpExceptionHandler extends ExceptionHandler {
  protected debug = !app.inProduction

  async handle(error: unknown, ctx: HttpContext) {
    return super.handle(error, ctx)
  }

  async report(error: unknown, ctx: HttpContext) {
    return super.report(error, ctx)
  }
}
`,

    'config/app.ts': `import env from '#start/env'
import { defineConfig } from '@adonisjs/core/http'

export const appKey = env.get('APP_KEY')

export const http = defineConfig({
  generateRequestId: true,
  allowMethodSpoofing: false,
  useAsyncLocalStorage: false,
})
`,

    'config/encryption.ts': `import env from '#start/env'
import { defineConfig, drivers } from '@adonisjs/core/encryption'

export default defineConfig({
  default: 'gcm',
  list: {
    gcm: drivers.aes256gcm({ id: 'gcm', keys: [env.get('APP_KEY')] }),
  },
})
`,

    'config/logger.ts': `import env from '#start/env'
import { defineConfig } from '@adonisjs/core/logger'

export default defineConfig({
  default: 'app',
  loggers: {
    app: { enabled: true, name: 'e2e-app', level: env.get('LOG_LEVEL') },
  },
})
`,

    'config/bodyparser.ts': `import { defineConfig } from '@adonisjs/core/bodyparser'

export default defineConfig({ allowedMethods: ['POST', 'PUT', 'PATCH', 'DELETE'] })
`,

    'config/redis.ts': `import env from '#start/env'
import { defineConfig } from '@adonisjs/redis'
import type { InferConnections } from '@adonisjs/redis/types'

const redisConfig = defineConfig({
  connection: 'main',
  connections: {
    main: { host: env.get('REDIS_HOST'), port: env.get('REDIS_PORT'), db: 0, keyPrefix: '' },
  },
})

export default redisConfig

declare module '@adonisjs/redis/types' {
  export interface RedisConnections extends InferConnections<typeof redisConfig> {}
}
`,

    'config/database.ts': `import env from '#start/env'
import { defineConfig } from '@adonisjs/lucid'

export default defineConfig({
  connection: 'postgres',
  connections: {
    postgres: {
      client: 'pg',
      connection: {
        host: env.get('DB_HOST'),
        port: env.get('DB_PORT'),
        user: env.get('DB_USER'),
        database: env.get('DB_DATABASE'),
      },
      migrations: { naturalSort: true, paths: ['database/migrations'] },
    },
  },
})
`,
  }
}

function envFile(database: string) {
  return [
    'NODE_ENV=development',
    'PORT=3333',
    'HOST=127.0.0.1',
    'APP_KEY=e2e-app-key-of-at-least-32-characters',
    'LOG_LEVEL=warn',
    'REDIS_HOST=127.0.0.1',
    'REDIS_PORT=6379',
    'DB_HOST=127.0.0.1',
    'DB_PORT=5432',
    'DB_USER=postgres',
    `DB_DATABASE=${database}`,
    '',
  ].join('\n')
}

function ignitorEntry(start: string) {
  return `import { Ignitor, prettyPrintError } from '@adonisjs/core'

const APP_ROOT = new URL('../', import.meta.url)

const IMPORTER = (filePath: string) => {
  if (filePath.startsWith('./') || filePath.startsWith('../')) {
    return import(new URL(filePath, APP_ROOT).href)
  }
  return import(filePath)
}

new Ignitor(APP_ROOT, { importer: IMPORTER })
  .tap((app) => {
    app.booting(async () => {
      await import('#start/env')
    })
    app.listen('SIGTERM', () => app.terminate())
    app.listenIf(app.managedByPm2, 'SIGINT', () => app.terminate())
  })
  .${start}
  .catch((error) => {
    process.exitCode = 1
    prettyPrintError(error)
  })
`
}

export async function writeFixtureApp(root: string, options: FixtureOptions) {
  for (const [path, contents] of Object.entries(fixtureFiles(options))) {
    const file = join(root, path)
    await mkdir(dirname(file), { recursive: true })
    await writeFile(file, contents)
  }
}
