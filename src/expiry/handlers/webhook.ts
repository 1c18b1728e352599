import { hasCredentials, withoutUrlSecrets } from '../../url-secrets.js'
import { signWebhook, webhookSecrets, SIGNATURE_HEADER } from '../../webhook-signature.js'
import type { ExpiryHandler } from '../handlers.js'

/**
 * The built-in `webhook` handler: POSTs the expiry event as JSON to
 * WEBHOOK_URL, signed (see src/webhook-signature.ts) with each secret of
 * WEBHOOK_SECRET, with the event's idempotency key as `Idempotency-Key`.
 * Node's fetch keeps connections alive and reuses them; TLS certificates are
 * verified; redirects are not followed. Anything but a 2xx within the timeout
 * fails the run, which then goes through retries and the dead-letter set.
 * Its error messages name the host only: they end up in lastError, the logs
 * and the dead event, where a URL's query (a token) must not.
 */
export interface WebhookOptions {
  url: string
  /** One secret, or two comma-separated during a rotation. */
  secret: string
  timeoutMs: number
}

/** The target URL, refused (without echoing it) when it is not one or carries credentials fetch would refuse anyway. */
function webhookTarget (url: string): URL {
  let target: URL
  try {
    target = new URL(url)
  } catch {
    throw new Error('webhook: WEBHOOK_URL is not a URL')
  }
  if (hasCredentials(target)) {
    throw new Error('webhook: WEBHOOK_URL carries credentials (user:password@), which are never sent; the receiver checks the Checkout-Signature instead')
  }
  return target
}

/** What the handler reads of a receiver's answer; the body says nothing the status does not. */
const MAX_BODY_READ_BYTES = 16 * 1024

/**
 * Reads a small body to its end, so the connection goes back to the pool;
 * a larger one is cut off after MAX_BODY_READ_BYTES (that connection closes)
 * rather than held in memory: a 400 MB answer grew a worker by 1 GB.
 */
async function discardBody (res: Response): Promise<void> {
  if (!res.body) return
  const reader = res.body.getReader()
  let read = 0
  try {
    while (read <= MAX_BODY_READ_BYTES) {
      const { done, value } = await reader.read()
      if (done) return
      read += value.byteLength
    }
    await reader.cancel()
  } catch {
    // A body cut off by the receiver changes nothing: the status decided.
  }
}

export function webhookHandler ({ url, secret, timeoutMs }: WebhookOptions): ExpiryHandler {
  const target = webhookTarget(url)
  const secrets = webhookSecrets(secret)
  if (secrets.length === 0) throw new Error('webhook: WEBHOOK_SECRET is empty')
  const where = `webhook ${target.host}`
  return async (event, ctx) => {
    // Signed and sent as the same bytes.
    const body = Buffer.from(JSON.stringify(event), 'utf8')
    let res: Response
    try {
      res = await fetch(target.href, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': event.idempotencyKey,
          [SIGNATURE_HEADER]: signWebhook(body, secrets)
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)])
      })
    } catch (err) {
      const reason = err instanceof Error && err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : String((err as Error).cause ?? err)
      throw new Error(`${where}: ${withoutUrlSecrets(reason, target)}`)
    }
    await discardBody(res)
    if (res.status < 200 || res.status > 299) throw new Error(`${where} answered ${res.status}`)
    ctx.log.debug({ status: res.status }, 'webhook delivered')
  }
}
