import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyPluginAsync } from 'fastify'

/**
 * The dashboard page and its files under /dashboard: plain HTML, CSS and
 * JavaScript (dashboard/ in the repository, dist/dashboard after
 * `npm run build`) and uPlot's browser build. The files
 * hold no data and need no token; the page asks for an admin token and
 * sends it to /admin. Every answer here carries a strict
 * Content-Security-Policy: the page loads and calls only this origin.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"
].join('; ')

/**
 * dashboard/ beside a bundle (npm run bundle), else dashboard/ beside src/
 * (from source) or dist/dashboard beside dist/src (built).
 */
const pageDirs = ['./dashboard/', '../../dashboard/'].map((path) => fileURLToPath(new URL(path, import.meta.url)))
export const pageDir = pageDirs.find((dir) => existsSync(join(dir, 'index.html'))) ?? pageDirs[1]!

/** uPlot's files: copied beside the page by the build and the bundle, else from the package (running from source). */
function uplotDir (): string {
  const copied = join(pageDir, 'vendor')
  return existsSync(copied) ? copied : dirname(createRequire(import.meta.url).resolve('uplot'))
}

const page: FastifyPluginAsync = async (app) => {
  if (!existsSync(pageDir)) throw new Error(`the dashboard files are missing (${pageDir}): run npm run build`)
  // Every route declared here serves files: public, whatever its path (see route-access.ts).
  app.addHook('onRoute', (route) => { route.config = { ...route.config, access: 'public' } })
  app.addHook('onSend', async (_request, reply, payload) => {
    void reply.header('Content-Security-Policy', CONTENT_SECURITY_POLICY)
    void reply.header('X-Content-Type-Options', 'nosniff')
    void reply.header('Referrer-Policy', 'no-referrer')
    void reply.header('Cache-Control', 'no-cache')
    return payload
  })
  await app.register(fastifyStatic, { root: pageDir, prefix: '/dashboard/', index: 'index.html', allowedPath: (path) => !path.includes('..') })
  await app.register(fastifyStatic, {
    root: uplotDir(),
    prefix: '/dashboard/vendor/',
    decorateReply: false,
    allowedPath: (path) => path === '/uPlot.iife.min.js' || path === '/uPlot.min.css'
  })
  app.get('/dashboard', { schema: { hide: true } }, async (_request, reply) => await reply.sendFile('index.html'))
}

export default page
