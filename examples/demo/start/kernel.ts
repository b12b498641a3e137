import router from '@adonisjs/core/services/router'
import server from '@adonisjs/core/services/server'

server.errorHandler(() => import('#exceptions/handler'))

server.use([])

router.use([() => import('@adonisjs/core/bodyparser_middleware')])

/**
 * In your app: `lock: () => import('adonis-lock/lock_middleware')`
 */
export const middleware = router.named({
  lock: () => import('../../../src/middleware/lock_middleware.ts'),
})
