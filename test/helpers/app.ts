import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { loadConfig, type Config } from '../../src/config.js'

/** A config for one test: its own key prefix, so no two tests share state. */
export function testConfig (redisUrl: string, env: Record<string, string> = {}): Config {
  return loadConfig({
    REDIS_URL: redisUrl,
    KEY_PREFIX: `t${randomBytes(4).toString('hex')}:`,
    LOG_LEVEL: 'silent',
    // TEST_KEY_FORMAT=1 (or 2) runs a test file on an older key format than the default 3 (docs/keys.md);
    // a test that pins KEY_FORMAT in `env` keeps its own.
    ...(process.env.TEST_KEY_FORMAT ? { KEY_FORMAT: process.env.TEST_KEY_FORMAT } : {}),
    ...env
  })
}

export async function testApp (redisUrl: string, env: Record<string, string> = {}): Promise<{ app: FastifyInstance, config: Config }> {
  const config = testConfig(redisUrl, env)
  const app = await buildApp({ config })
  await app.ready()
  return { app, config }
}

export const json = (body: unknown) => ({
  headers: { 'content-type': 'application/json' },
  payload: JSON.stringify(body)
})
