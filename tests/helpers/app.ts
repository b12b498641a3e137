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
