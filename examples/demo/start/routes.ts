import router from '@adonisjs/core/services/router'
import { middleware } from '#start/kernel'

const OrdersController = () => import('#controllers/orders_controller')
const PaymentsController = () => import('#controllers/payments_controller')
const JobsController = () => import('#controllers/jobs_controller')

router.get('/health', () => ({ pid: process.pid }))

/**
 * Identical requests (same client, route and body) wait for each other:
 * on the shared store across both servers, on the memory store only
 * within one server
 */
router.post('/orders', [OrdersController, 'store']).use(middleware.lock({ ttl: '30s' }))
router
  .post('/orders/in-memory', [OrdersController, 'store'])
  .use(middleware.lock({ ttl: '30s', store: 'memory' }))
  .as('orders.store_in_memory')
router.get('/orders/:id/runs', [OrdersController, 'runs'])

/**
 * `replay: true` stores the response in @adonisjs/cache (config/cache.ts)
 * and answers a retry with it
 */
router
  .post('/payments', [PaymentsController, 'store'])
  .use(middleware.lock({ idempotency: 'optional', replay: true }))
router.get('/payments/:reference/runs', [PaymentsController, 'runs'])

/**
 * A worker taking the lock `jobs.<name>`, streaming what happens as
 * JSON lines
 */
router.post('/jobs/:name', [JobsController, 'run'])
