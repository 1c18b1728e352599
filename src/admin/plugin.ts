import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import deadLetterRoutes from './dead-letter-routes.js'
import overviewRoutes from './overview-routes.js'
import page from './page.js'

/**
 * DASHBOARD=true: the operator API under /admin (admin tokens only) and the
 * page at /dashboard that uses it (docs/dashboard.md).
 */
const dashboard: FastifyPluginAsync<{ config: Config }> = async (app, { config }) => {
  await app.register(overviewRoutes, { config })
  await app.register(deadLetterRoutes)
  await app.register(page)
}

export default fp(dashboard, { name: 'dashboard', dependencies: ['store', 'auth'] })
