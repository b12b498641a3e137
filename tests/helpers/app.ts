import { IgnitorFactory } from '@adonisjs/core/factories/core/ignitor'
import { getActiveTest } from '@japa/runner'

export const APP_ROOT = new URL('../../tmp/app/', import.meta.url)

const importer = (filePath: string) => {
  if (filePath.startsWith('./') || filePath.startsWith('../')) {
    return import(new URL(filePath, APP_ROOT).href)
  }
  return import(filePath)
}

/**
 * Boots a real AdonisJS application (core providers, this package's
 * provider) and terminates it when the test ends
 */
export async function setupApp(parameters: Parameters<IgnitorFactory['merge']>[0] = {}) {
  const ignitor = new IgnitorFactory()
    .withCoreProviders()
    .withCoreConfig()
    .merge(parameters)
    .create(APP_ROOT, { importer })

  const app = ignitor.createApp('web')
  await app.init()
  await app.boot()
  getActiveTest()?.cleanup(() => app.terminate())
  return app
}

const BACKEND_PROVIDERS = {
  redis: () => import('@adonisjs/redis/redis_provider'),
  lucid: () => import('@adonisjs/lucid/database_provider'),
}

/**
 * An app with this package's provider, after the provider of its backend
 * when it has one, and the given config files
 */
export function setupLockApp(
  config: Record<string, unknown>,
  backend?: keyof typeof BACKEND_PROVIDERS
) {
  return setupApp({
    rcFileContents: {
      providers: [
        ...(backend ? [BACKEND_PROVIDERS[backend]] : []),
        () => import('../../providers/lock_provider.ts'),
      ],
    },
    config,
  })
}
