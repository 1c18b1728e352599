import { parseArgs } from 'node:util'
import { DEFAULT_LIMIT, MAX_LIMIT, USAGE, type Command } from './command.js'
import { parseDuration } from './duration.js'
import { CliError, CliErrors } from './errors.js'
import type { Io } from './output.js'
import { reportError, runCli } from './run.js'

/**
 * The command line of checkoutctl: arguments to a Command, then the run. A
 * usage error exits 2 with the usage text. bin/checkoutctl.ts calls main
 * with the process's arguments, environment and streams; tests call it too.
 */
const OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  status: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  'all-dead': { type: 'boolean' },
  dead: { type: 'boolean' },
  'older-than': { type: 'string' },
  yes: { type: 'boolean' }
} as const

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS, allowPositionals: true }>>['values']
type Option = keyof typeof OPTIONS

/** Which options each command takes besides --json and --help. */
const ALLOWED: Record<string, Option[]> = {
  get: [],
  list: ['status', 'limit', 'cursor'],
  replay: ['all-dead'],
  purge: ['dead', 'older-than', 'yes'],
  stats: [],
  doctor: [],
  migrate: []
}

function toCommand (name: string | undefined, args: string[], values: Values): Command {
  if (name === undefined) throw CliErrors.usage('no command given')
  const allowed = ALLOWED[name]
  if (!allowed) throw CliErrors.usage(`unknown command "${name}"`)
  const extra = (Object.keys(values) as Option[]).filter((o) => o !== 'json' && o !== 'help' && !allowed.includes(o))
  if (extra.length > 0) throw CliErrors.usage(`${name} does not take --${extra.join(', --')}`)
  if (name === 'migrate') {
    const action = args[0]
    if (args.length !== 1 || (action !== 'start' && action !== 'status' && action !== 'finish')) {
      throw CliErrors.usage('migrate takes one of start, --status, finish')
    }
    return { name, action }
  }
  const takesId = name === 'get' || (name === 'replay' && values['all-dead'] !== true)
  if (args.length !== (takesId ? 1 : 0)) {
    throw CliErrors.usage(takesId ? `${name} takes one order id` : `${name} takes no argument besides its options (got "${args.join(' ')}")`)
  }
  switch (name) {
    case 'get': return { name, id: args[0] as string }
    case 'replay': return takesId ? { name, id: args[0] as string } : { name: 'replay-all-dead' }
    case 'list': {
      const status = values.status
      if (status !== 'pending' && status !== 'dead') throw CliErrors.usage('list needs --status pending or --status dead')
      const limit = values.limit === undefined ? DEFAULT_LIMIT : Number(values.limit)
      if (!/^\d+$/.test(values.limit ?? String(DEFAULT_LIMIT)) || limit < 1 || limit > MAX_LIMIT) {
        throw CliErrors.usage(`--limit must be a whole number from 1 to ${MAX_LIMIT}`)
      }
      return { name, status, limit, cursor: values.cursor }
    }
    case 'purge': {
      if (values.dead !== true) throw CliErrors.usage('purge needs --dead (dead letters are all it removes)')
      const raw = values['older-than']
      const olderThanMs = raw === undefined ? undefined : parseDuration(raw)
      if (raw !== undefined && olderThanMs === undefined) {
        throw CliErrors.usage(`--older-than "${raw}" is not a duration such as 7d, 12h, 30m, 45s or 500ms`)
      }
      return { name: 'purge-dead', olderThanMs, yes: values.yes === true }
    }
    case 'doctor': return { name: 'doctor' }
    default: return { name: 'stats' }
  }
}

/** Runs one command line; resolves with the exit code. */
export async function main (argv: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const json = argv.includes('--json')
  let command: Command | undefined
  try {
    // `migrate --status` is a flag there, while `--status` takes a value for list.
    const line = argv.find((a) => !a.startsWith('-')) === 'migrate' ? argv.map((a) => a === '--status' ? 'status' : a) : argv
    const { values, positionals } = parseArgs({ args: line, options: OPTIONS, allowPositionals: true, strict: true })
    const [name, ...args] = positionals
    if (values.help === true) {
      io.out(`${USAGE}\n`)
      return 0
    }
    command = toCommand(name, args, values)
  } catch (err) {
    // parseArgs throws a TypeError (code ERR_PARSE_ARGS_*) for an unknown option or a missing value.
    const error = err instanceof CliError ? err : CliErrors.usage(err instanceof Error ? err.message : String(err))
    reportError(io, json, error, USAGE)
    return error.exitCode
  }
  return await runCli({ command, json }, env, io)
}
