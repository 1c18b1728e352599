import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import t from 'tap'
import { loadHandlers } from '../src/expiry/handlers.js'
import { tempDir } from './helpers/temp.js'

/** The built-in log handler: ids, times and sizes; payload contents (personal data, maybe) at no level. */
const event = {
  id: 'order-9', payload: { email: 'someone@example.com', cart: ['sku-1'] }, deadline: '2026-01-01T00:00:00.000Z',
  expiredAt: '2026-01-01T00:00:00.005Z', attempt: 1, generation: 7, idempotencyKey: 'order-9:7'
}

function run (level: 'info' | 'debug') {
  const lines: Array<Record<string, unknown>> = []
  const log = pino({ level }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } })
  return { lines, log }
}

t.test('at info the log handler writes no payload contents', async (t) => {
  const [log] = await loadHandlers('log')
  const { lines, log: logger } = run('info')
  await log!.handle(event, { log: logger, signal: new AbortController().signal })
  t.equal(lines.length, 1)
  t.match(lines[0], { msg: 'order expired', deadline: event.deadline, expiredAt: event.expiredAt, payloadBytes: JSON.stringify(event.payload).length })
  t.notMatch(JSON.stringify(lines), /someone@example\.com/, 'no payload contents')
})

t.test('at debug neither', async (t) => {
  const [log] = await loadHandlers('log')
  const { lines, log: logger } = run('debug')
  await log!.handle(event, { log: logger, signal: new AbortController().signal })
  t.equal(lines.length, 1)
  t.notMatch(JSON.stringify(lines), /someone@example\.com/, 'no payload contents')
})

t.test('an order without a payload', async (t) => {
  const [log] = await loadHandlers('log')
  const { lines, log: logger } = run('debug')
  await log!.handle({ ...event, payload: undefined }, { log: logger, signal: new AbortController().signal })
  t.match(lines[0], { msg: 'order expired', payloadBytes: 0 })
})

t.test('the built worker refuses a TypeScript handler module with one line; the sources load it', async (t) => {
  const dir = tempDir(t, 'ts-handler')
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n')
  writeFileSync(join(dir, 'release.ts'), 'export default async function release (event: { id: string }): Promise<void> { void event.id }\n')
  // As the built worker (plain Node): refused before Node tries, and fails on, the import.
  await t.rejects(loadHandlers('log,./release.ts', {}, dir, false),
    { message: 'EXPIRY_HANDLERS: ./release.ts is TypeScript, which the built worker cannot load; compile it to JavaScript (.js or .mjs) and name that file' })
  await t.rejects(loadHandlers('./release.mts', {}, dir, false), /is TypeScript/)
  // From the sources (npm run dev, tests): tsx loads it.
  const handlers = await loadHandlers('./release.ts', {}, dir)
  t.same(handlers.map((h) => h.name), ['./release.ts'])
})
