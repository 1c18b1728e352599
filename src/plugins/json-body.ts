import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import sjson from 'secure-json-parse'
import { Errors } from '../errors.js'

/**
 * How deep a request body may nest (objects and arrays, the body itself
 * counting as one). Schema validation, the idempotency fingerprint and the
 * serializer all recurse: 5,000 levels in a 10 KB body overflowed the stack.
 */
export const MAX_JSON_DEPTH = 64

const OPEN_OBJECT = 0x7b // {
const OPEN_ARRAY = 0x5b // [
const CLOSE_OBJECT = 0x7d // }
const CLOSE_ARRAY = 0x5d // ]
const QUOTE = 0x22
const BACKSLASH = 0x5c

/**
 * True when the text nests deeper than maxDepth. One pass without
 * recursion, skipping string contents; brackets that do not match are left
 * to the parser to report.
 */
export function nestsDeeperThan (text: string, maxDepth: number): boolean {
  let depth = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === QUOTE) {
      for (i++; i < text.length; i++) {
        const s = text.charCodeAt(i)
        if (s === BACKSLASH) i++
        else if (s === QUOTE) break
      }
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > maxDepth) return true
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--
    }
  }
  return false
}

/** How secure-json-parse says it refused a key on purpose: not a syntax error. */
const FORBIDDEN_KEY = /forbidden (prototype|constructor) property/i

/** Parses a request body; every refusal is an error of our list with a message that says why. */
export function parseJsonBody (text: string): unknown {
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) throw new Errors.BODY_TOO_DEEP(MAX_JSON_DEPTH)
  try {
    return sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' })
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    // JSON.parse's own words, e.g. "Expected ',' or '}' after property value in JSON at position 6".
    throw FORBIDDEN_KEY.test(message) ? new Errors.FORBIDDEN_KEY() : new Errors.INVALID_JSON(message)
  }
}

/**
 * The application/json parser: an empty body is no body (what many clients
 * send on POST …/complete and DELETE); otherwise parseJsonBody.
 */
export default fp(async (app: FastifyInstance) => {
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = body as string
    if (text === '') {
      done(null, undefined)
      return
    }
    try {
      done(null, parseJsonBody(text))
    } catch (err) {
      done(err as Error, undefined)
    }
  })
}, { name: 'json-body' })
