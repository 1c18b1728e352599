import { InvalidCursorError } from '../store/listing.js'
import { MigrationRefusedError } from '../store/migration.js'
import { USAGE, usageProblem, type Command, type Invocation } from './command.js'
import { doctorCommand } from './doctor.js'
import { CliError, CliErrors } from './errors.js'
import { getCommand } from './get.js'
import { listCommand } from './list.js'
import { migrateCommand } from './migrate.js'
import type { Io, Result } from './output.js'
import { purgeCommand } from './purge.js'
import { replayAllCommand, replayCommand } from './replay.js'
import { openSession, type Session } from './session.js'
import { statsCommand } from './stats.js'

const WRITES: ReadonlySet<Command['name']> = new Set(['replay', 'replay-all-dead', 'purge-dead'])

async function dispatch (session: Session, command: Command, io: Io): Promise<Result> {
  const { store } = session
  switch (command.name) {
    case 'get': return await getCommand(store, command.id)
    case 'list': return await listCommand(store, command.status, command.limit, command.cursor)
    case 'replay': return await replayCommand(store, command.id)
    case 'replay-all-dead': return await replayAllCommand(store)
    case 'purge-dead': return await purgeCommand(store, command.olderThanMs)
    case 'stats': return await statsCommand(store)
    case 'doctor': return await doctorCommand(store)
    case 'migrate': return await migrateCommand(session, command.action, (message) => io.err(`checkoutctl: ${message}\n`))
  }
}

/** Turns whatever a command threw into the error an operator reads, with its code and exit code. */
export function toCliError (err: unknown, redisUrl: string | undefined): CliError {
  if (err instanceof CliError) return err
  if (err instanceof InvalidCursorError) return CliErrors.usage(err.message)
  if (err instanceof MigrationRefusedError) return CliErrors.refused(err.message)
  const { code, message, cause, progress } = err as { code?: unknown, message?: unknown, cause?: unknown, progress?: unknown }
  const after = typeof progress === 'string' ? ` (${progress})` : ''
  if (code === 'CHECKOUT_NOT_FOUND') return CliErrors.notFound(String(message))
  if (code === 'REDIS_UNAVAILABLE') {
    const reason = cause instanceof Error ? cause.message : 'no answer'
    return CliErrors.redisUnavailable(redisUrl ?? 'REDIS_URL', `${reason}${after}`)
  }
  return CliErrors.internal(`${err instanceof Error ? err.message : String(err)}${after}`, err)
}

/** Prints a failure: on stderr, and with --json also as the one JSON document on stdout. */
export function reportError (io: Io, json: boolean, error: CliError, usage?: string): void {
  io.err(`checkoutctl: ${error.message}\n${usage ? `\n${usage}\n` : ''}`)
  if (json) io.out(`${JSON.stringify({ error: { code: error.code, message: error.message } })}\n`)
}

/** Runs one command against the configured Redis; resolves with the exit code. */
export async function runCli (invocation: Invocation, env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  let session: Session | undefined
  try {
    const problem = usageProblem(invocation.command)
    if (problem) throw CliErrors.usage(problem)
    session = await openSession(env, {
      writes: WRITES.has(invocation.command.name),
      warn: (message) => io.err(`checkoutctl: warning: ${message}\n`)
    })
    const result = await dispatch(session, invocation.command, io)
    io.out(invocation.json ? `${JSON.stringify(result.json, null, 2)}\n` : `${result.text}\n`)
    return result.exitCode ?? 0
  } catch (err) {
    const error = toCliError(err, session?.where)
    reportError(io, invocation.json, error, error.code === 'USAGE' ? USAGE : undefined)
    return error.exitCode
  } finally {
    await session?.close()
  }
}
