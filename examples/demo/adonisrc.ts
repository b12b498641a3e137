import { defineConfig } from '@adonisjs/core/app'

/**
 * In your app the package is imported by name: `() => import('adonis-lock/lock_provider')`
 * and `() => import('adonis-lock/commands')`. The demo runs this repository's sources.
 */
export default defineConfig({
  commands: [
    () => import('@adonisjs/core/commands'),
    () => import('@adonisjs/lucid/commands'),
    () => import('./app/adonis_lock_commands.ts'),
  ],
  providers: [
    () => import('@adonisjs/core/providers/app_provider'),
    () => import('@adonisjs/redis/redis_provider'),
    () => import('@adonisjs/lucid/database_provider'),
    () => import('@adonisjs/cache/cache_provider'),
    () => import('../../providers/lock_provider.ts'),
  ],
  preloads: [() => import('#start/routes'), () => import('#start/kernel')],
})
