import { signWebhook, SIGNATURE_HEADER } from '../../webhook-signature.js'
import type { ExpiryHandler } from '../handlers.js'

/**
 * The built-in `webhook` handler: POSTs the expiry event as JSON to
 * WEBHOOK_URL, signed (see src/webhook-signature.ts), with the event's
 * idempotency key as `Idempotency-Key`. Node's fetch keeps connections alive
 * and reuses them; TLS certificates are verified; redirects are not
 * followed. Anything but a 2xx within the timeout fails the run, which then
 * goes through retries and the dead-letter set.
 */
export interface WebhookOptions {
  url: string
  secret: string
  timeoutMs: number
}

export function webhookHandler ({ url, secret, timeoutMs }: WebhookOptions): ExpiryHandler {
  return async (event, ctx) => {
    const body = JSON.stringify(event)
    let res: Response
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': event.idempotencyKey,
          [SIGNATURE_HEADER]: signWebhook(body, secret)
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)])
      })
    } catch (err) {
      const reason = err instanceof Error && err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : String((err as Error).cause ?? err)
      throw new Error(`webhook ${new URL(url).host}: ${reason}`)
    }
    // Drain the body so the connection goes back to the pool.
    await res.arrayBuffer().catch(() => {})
    if (res.status < 200 || res.status > 299) throw new Error(`webhook ${new URL(url).host} answered ${res.status}`)
    ctx.log.debug({ status: res.status }, 'webhook delivered')
  }
}
