import type Configure from '@adonisjs/core/commands/configure'
import { readText, type Codemods } from './codemods.ts'
import { isKnownStore, STORES, type Backend, type StoreEntryTemplate } from './stores.ts'

/**
 * The redis and database stores need @adonisjs/redis / @adonisjs/lucid
 * installed and configured: offer to do it, or say what to run
 */
export async function ensureBackends(
  command: Configure,
  codemods: Codemods,
  stores: string[],
  installFlag: boolean | undefined,
  interactive: boolean
) {
  const rcFile = (await readText(command.app.makePath('adonisrc.ts'))) ?? ''
  const manifest = JSON.parse((await readText(command.app.makePath('package.json'))) ?? '{}')
  const dependencies = { ...manifest.dependencies, ...manifest.devDependencies }

  for (const name of stores) {
    const backend: Backend | undefined = isKnownStore(name)
      ? (STORES[name] as StoreEntryTemplate).backend
      : undefined
    if (!backend || rcFile.includes(backend.provider)) continue

    const installed = Object.hasOwn(dependencies, backend.pkg)
    command.logger.warning(
      `The ${name} store needs "${backend.pkg}", which is ${installed ? 'installed but not configured' : 'not installed'}`
    )
    const proceed =
      installFlag ??
      (interactive
        ? await command.prompt.confirm(
            `${installed ? 'Configure' : 'Install and configure'} "${backend.pkg}" now?`
          )
        : false)

    if (!proceed) {
      if (!installed) {
        await codemods.listPackagesToInstall([{ name: backend.pkg, isDevDependency: false }])
      }
      command.logger.info(
        `${installed ? 'Run' : 'Then run'}: node ace configure ${backend.pkg}${backend.configureHint}`
      )
      continue
    }

    if (!installed) {
      const done = await codemods.installPackages([{ name: backend.pkg, isDevDependency: false }])
      if (!done) {
        command.exitCode = 1
        continue
      }
    }
    if (backend.configureHint && !interactive) {
      command.logger.info(`Now run: node ace configure ${backend.pkg}${backend.configureHint}`)
      continue
    }
    const ace = await command.app.container.make('ace')
    const result = await ace.exec('configure', [backend.pkg, ...(installFlag ? ['--install'] : [])])
    if (result.exitCode) command.exitCode = result.exitCode
  }
}
