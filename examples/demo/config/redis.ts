import { defineConfig } from '@adonisjs/redis'

export default defineConfig({
  connection: 'main',
  connections: {
    main: { host: '127.0.0.1', port: 6379, db: 0, keyPrefix: '' },
  },
})
