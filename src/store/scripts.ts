import { readFileSync, readdirSync } from 'node:fs'
import type { RedisClient } from '../redis/connection.js'
import { replyCode } from '../redis/errors.js'

/**
 * Loads the Lua scripts in ./scripts (named `<command>-<numberOfKeys>.lua`),
 * inlines their `-- @include <file>` lines from ./scripts/includes and
 * registers them on a connection under versioned names, so two releases
 * running side by side never call each other's scripts.
 * Bump SCRIPTS_VERSION whenever a script's KEYS, ARGV or replies change.
 */
export const SCRIPTS_VERSION = 10

export type ScriptName =
  | 'create' | 'get' | 'end' | 'extend'
  | 'claim' | 'ack' | 'fail' | 'release' | 'next-due' | 'replay' | 'purge'
  | 'members-beat' | 'members-leave' | 'own'
  | 'relay-take' | 'relay-done' | 'layout-epoch'
  // Key format 3 (includes/packed.lua)
  | 'packed-create' | 'packed-get' | 'packed-end' | 'packed-extend' | 'packed-claim' | 'packed-next-due'

interface ScriptSource {
  name: ScriptName
  numberOfKeys: number
  lua: string
  /**
   * Declared `#!lua flags=no-writes` on its first line: Redis runs it on a
   * replica (a cluster replica would otherwise redirect it to its master),
   * and ioredis sends it to replicas of a cluster read with scaleReads.
   */
  readOnly: boolean
}

const scriptsDir = new URL('./scripts/', import.meta.url)

/**
 * In a bundle (scripts/bundle.mjs) every file under ./scripts, by its path
 * there, is put here at build time, so the bundle reads no file; from the
 * sources or tsc's output they are read from disk.
 */
declare const BUNDLED_LUA: Record<string, string> | undefined
const bundled = typeof BUNDLED_LUA === 'undefined' ? undefined : BUNDLED_LUA
const readScript = (path: string): string => bundled?.[path] ?? readFileSync(new URL(path, scriptsDir), 'utf8')
const scriptFiles = (): string[] => bundled ? Object.keys(bundled).filter((path) => !path.includes('/')) : readdirSync(scriptsDir)

function inline (file: string, seen: Set<string>): string {
  const text = readScript(file)
  return text.replace(/^-- @include (\S+)$/gm, (_line, name: string) => {
    const path = `includes/${name}`
    if (seen.has(path)) return ''
    seen.add(path)
    return inline(path, seen)
  })
}

let cache: ScriptSource[] | undefined
export function scriptSources (): ScriptSource[] {
  cache ??= scriptFiles()
    .map((file) => /^([a-z-]+)-(\d+)\.lua$/.exec(file))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => {
      const lua = inline(m[0], new Set())
      return { name: m[1] as ScriptName, numberOfKeys: Number(m[2]), lua, readOnly: /^#!lua flags=no-writes\b/.test(lua) }
    })
  return cache
}

/** The name a script is registered under on a connection (defineCommand). */
export const commandName = (name: ScriptName): string => `ce${SCRIPTS_VERSION}_${name.replace(/-/g, '_')}`

type ScriptCommand = (...keysAndArgs: Array<string | number>) => Promise<unknown>

/** Registers every script on a connection; idempotent. */
export function defineScripts (redis: RedisClient): void {
  const commands = redis as unknown as Record<string, ScriptCommand | undefined>
  for (const script of scriptSources()) {
    const name = commandName(script.name)
    if (commands[name]) continue
    redis.defineCommand(name, { numberOfKeys: script.numberOfKeys, lua: script.lua, readOnly: script.readOnly })
  }
}

/** Sends of one script call that may meet NOSCRIPT before it gives up (each costs a round trip). */
export const NOSCRIPT_ATTEMPTS = 4

/**
 * Runs a script: EVAL the first time on each connection, EVALSHA after, and
 * EVAL again on NOSCRIPT (ioredis does it), so a SCRIPT FLUSH or a promoted
 * replica with an empty script cache costs one round trip, never an error.
 * ioredis resends once, and only the first of several calls in flight
 * resends as EVAL: a second flush before the others' resends arrive answers
 * them NOSCRIPT again. A script answered NOSCRIPT did not run, so the call
 * is sent again, a few times at most.
 */
export async function runScript (
  redis: RedisClient, name: ScriptName, keys: string[], args: Array<string | number>
): Promise<unknown[]> {
  const command = (redis as unknown as Record<string, ScriptCommand | undefined>)[commandName(name)]
  if (!command) throw new Error(`script ${name} is not defined on this connection; call defineScripts first`)
  for (let attempt = 1; ; attempt++) {
    try {
      return await command.call(redis, ...keys, ...args) as unknown[]
    } catch (err) {
      if (attempt >= NOSCRIPT_ATTEMPTS || !(err instanceof Error) || replyCode(err) !== 'NOSCRIPT') throw err
    }
  }
}
