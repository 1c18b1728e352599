import { createHash } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Errors } from '../errors.js'
import { bearerToken } from '../plugins/auth.js'
import { writeAudit, readAudit } from '../store/audit.js'
import { actOnLetters, countDeadLettersUpTo, replayDeadLettersUpTo, stillDead } from '../store/dead-letter-actions.js'
import { purgeDeadLettersUpTo } from '../store/dead-letters.js'
import { serverTime } from '../store/direct.js'
import { InvalidCursorError, listDeadLetterPage } from '../store/listing.js'
import type { StoreContext } from '../store/context.js'
import { adminErrors, AuditResponse, BulkBody, BulkResponse, DeadLettersQuery, DeadLettersResponse, queryInt } from './schemas.js'

/**
 * Dead letters and what an operator does with them. Every action runs in
 * two steps: a dry run (`dryRun: true`) answers how many letters and which;
 * the run (`dryRun: false`) names the count it confirms (and, for `all`, the
 * `upTo` bound the dry run answered) and is refused with 409 COUNT_CHANGED
 * when the selection no longer holds that many. Each run is written to the
 * audit stream.
 */
const admin = { access: 'admin' } as const
const SAMPLE = 20

/** Who asked, for the audit: a short hash of the admin token (never the token) and the client address. */
const who = (request: FastifyRequest) =>
  `token:${createHash('sha256').update(bearerToken(request) ?? '').digest('hex').slice(0, 8)}@${request.ip}`

interface Selection {
  count: number
  upTo: number | null
  sample: Array<{ shard: number, member: string }>
  run: () => Promise<{ done: number, skipped: number }>
}

async function select (store: StoreContext, action: 'replay' | 'purge', body: BulkBody): Promise<Selection> {
  if ((body.letters === undefined) === (body.all !== true)) {
    throw new Errors.CONFIRMATION_REQUIRED('give either letters or all: true')
  }
  if (body.letters) {
    const letters = await stillDead(store, body.letters)
    return { count: letters.length, upTo: null, sample: letters.slice(0, SAMPLE), run: async () => await actOnLetters(store, action, letters) }
  }
  if (!body.dryRun && body.upTo === undefined) throw new Errors.CONFIRMATION_REQUIRED('a run of all needs the upTo its dry run answered')
  // The dry run fixes the bound; the run uses the one it was shown.
  const upTo = body.upTo ?? await serverTime(store) - (action === 'purge' ? body.olderThanMs ?? 0 : 0)
  const count = await countDeadLettersUpTo(store, upTo)
  const page = body.dryRun ? await listDeadLetterPage(store, { limit: SAMPLE, maxScore: upTo }) : { items: [] }
  return {
    count,
    upTo,
    sample: page.items.map((d) => ({ shard: d.shard, member: d.member })),
    run: async () => {
      if (action === 'replay') {
        const { replayed, skipped } = await replayDeadLettersUpTo(store, upTo)
        return { done: replayed, skipped }
      }
      const purged = await purgeDeadLettersUpTo(store, upTo)
      return { done: purged, skipped: Math.max(0, count - purged) }
    }
  }
}

const deadLetterRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const store = app.store

  app.get('/admin/dead-letters', {
    config: admin,
    schema: { summary: 'Dead letters with their last error and attempts, a page at a time', tags: ['admin'], querystring: DeadLettersQuery, response: { 200: DeadLettersResponse, 400: adminErrors[400], 503: adminErrors[503] } }
  }, async (request) => {
    try {
      const page = await listDeadLetterPage(store, { limit: queryInt(request.query.limit, 50, 1, 200), cursor: request.query.cursor })
      return { items: page.items, next: page.next ?? null }
    } catch (err) {
      if (err instanceof InvalidCursorError) throw new Errors.INVALID_CURSOR(err.message)
      throw err
    }
  })

  for (const action of ['replay', 'purge'] as const) {
    app.post(`/admin/dead-letters/${action}`, {
      config: admin,
      schema: {
        summary: action === 'replay' ? 'Replay dead letters: a dry run first, then the run with the confirmed count' : 'Purge dead letters: a dry run first, then the run with the confirmed count',
        tags: ['admin'],
        body: BulkBody,
        response: { 200: BulkResponse, 400: adminErrors[400], 409: adminErrors[409], 503: adminErrors[503] }
      }
    }, async (request) => {
      const body = request.body
      const selection = await select(store, action, body)
      if (body.dryRun) return { dryRun: true, action, count: selection.count, skipped: 0, upTo: selection.upTo, sample: selection.sample, auditId: null }
      if (body.confirmCount === undefined) throw new Errors.CONFIRMATION_REQUIRED('a run needs confirmCount: the count its dry run answered')
      if (body.confirmCount !== selection.count) throw new Errors.COUNT_CHANGED(selection.count, body.confirmCount)
      const { done, skipped } = await selection.run()
      const detail = JSON.stringify(body.letters ? { letters: body.letters } : { all: true, upTo: selection.upTo })
      const auditId = await writeAudit(store, { who: who(request), action: `dead-letters.${action}`, count: done, detail })
      request.log.info({ action, count: done, skipped }, 'admin action on dead letters')
      return { dryRun: false, action, count: done, skipped, upTo: selection.upTo, sample: [], auditId }
    })
  }

  app.get('/admin/audit', {
    config: admin,
    schema: { summary: 'The newest admin actions: who, what, when, how many', tags: ['admin'], response: { 200: AuditResponse, 503: adminErrors[503] } }
  }, async () => ({ items: await readAudit(store, 50) }))
}

export default deadLetterRoutes
