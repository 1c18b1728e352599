import { isAbsolute, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Logger } from 'pino'
import { streamHandler, type StreamOptions } from './handlers/stream.js'
import { webhookHandler } from './handlers/webhook.js'

/**
 * The expiry handler contract (see README, "Handlers"). Handlers must be
 * idempotent: a worker can crash after a handler's side effect and before
 * the acknowledgement, and the order is then handled again with the same
 * idempotencyKey.
 */
export interface ExpiryEvent {
  id: string
  payload: Record<string, unknown> | undefined
  /** When the hold was due to run out (ISO 8601). */
  deadline: string
  /** When the service recorded the expiry (ISO 8601). */
  expiredAt: string
  /** 1 on the first run, 2 on the first retry, ... */
  attempt: number
  generation: number
  /** `<id>:<epoch>:<generation>`: the same on every run of one expiry, never on two (docs/delivery.md). */
  idempotencyKey: string
}

export interface HandlerContext {
  log: Logger
  /** Aborted when the handler runs past its timeout or the worker is forced to stop. */
  signal: AbortSignal
}

export type ExpiryHandler = (event: ExpiryEvent, ctx: HandlerContext) => Promise<void> | void

export interface NamedHandler {
  name: string
  handle: ExpiryHandler
}

/** What the built-in handlers are configured with (from the worker's config). */
export interface BuiltInSettings {
  webhook?: { url: string, secret: string, timeoutMs: number }
  /** Set only when EVENT_STREAM is on, which the `stream` handler requires (it writes nothing itself: handlers/stream.ts). */
  stream?: StreamOptions | undefined
}

type BuiltIn = (settings: BuiltInSettings) => ExpiryHandler

const logHandler: ExpiryHandler = (event, ctx) => {
  // ctx.log already carries orderId, generation and attempt. Payloads can hold
  // personal data: only their size is logged, at any level.
  const payloadBytes = event.payload === undefined ? 0 : Buffer.byteLength(JSON.stringify(event.payload))
  ctx.log.info({ deadline: event.deadline, expiredAt: event.expiredAt, payloadBytes }, 'order expired')
}

const builtIns: Record<string, BuiltIn> = {
  log: () => logHandler,
  webhook: ({ webhook }) => {
    if (!webhook?.url || !webhook.secret) {
      throw new Error('EXPIRY_HANDLERS names "webhook": set WEBHOOK_URL and WEBHOOK_SECRET')
    }
    return webhookHandler(webhook)
  },
  stream: ({ stream }) => {
    // Listing `stream` asks for lifecycle events: without them there would be no `expired` event either.
    if (!stream) throw new Error('EXPIRY_HANDLERS names "stream": set EVENT_STREAM=true, which records the expired events')
    return streamHandler(stream)
  }
}

/**
 * Whether a handler module may be TypeScript: only while this module runs
 * from its sources (`npm run dev`, through tsx). The built worker runs on
 * plain Node, which cannot import TypeScript (README, "Expiry handlers").
 */
const RUNS_FROM_SOURCES = import.meta.url.endsWith('.ts')
const TYPESCRIPT_MODULE = /\.[cm]?tsx?$/

/** Resolves EXPIRY_HANDLERS: built-in names or ES module paths (relative to the working directory). */
export async function loadHandlers (
  spec: string, settings: BuiltInSettings = {}, cwd = process.cwd(), typescript = RUNS_FROM_SOURCES
): Promise<NamedHandler[]> {
  const names = spec.split(',').map((s) => s.trim()).filter((s) => s !== '')
  if (names.length === 0) throw new Error('EXPIRY_HANDLERS is empty: name at least one handler (e.g. "log")')
  const handlers: NamedHandler[] = []
  for (const name of names) {
    const builtIn = builtIns[name]
    if (builtIn) {
      handlers.push({ name, handle: builtIn(settings) })
      continue
    }
    if (!name.includes('/') && !name.includes('.')) {
      throw new Error(`EXPIRY_HANDLERS: unknown handler "${name}"; built-ins are ${Object.keys(builtIns).join(', ')}, anything else must be a module path`)
    }
    if (!typescript && TYPESCRIPT_MODULE.test(name)) {
      throw new Error(`EXPIRY_HANDLERS: ${name} is TypeScript, which the built worker cannot load; compile it to JavaScript (.js or .mjs) and name that file`)
    }
    const url = pathToFileURL(isAbsolute(name) ? name : resolve(cwd, name)).href
    const mod = await import(url) as { default?: unknown }
    if (typeof mod.default !== 'function') {
      throw new Error(`EXPIRY_HANDLERS: module ${name} has no default export function`)
    }
    handlers.push({ name, handle: mod.default as ExpiryHandler })
  }
  return handlers
}
