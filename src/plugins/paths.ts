import type { FastifyRequest } from 'fastify'

/** The request's path without its query string. */
export const pathOf = (request: FastifyRequest): string => request.url.split('?', 1)[0] ?? ''

/** True for `prefix` itself and anything below it (`/checkout`, `/checkout/a1`), never for `/checkouts`. */
export const under = (path: string, prefix: string): boolean => path === prefix || path.startsWith(`${prefix}/`)

/** The routes the service exists for: what auth guards and the rate limit counts. */
export const isCheckoutRequest = (request: FastifyRequest): boolean => under(pathOf(request), '/checkout')
