import { pino } from 'pino'
import t from 'tap'
import { loadHandlers } from '../src/expiry/handlers.js'

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
