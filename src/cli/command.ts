/** A parsed checkoutctl invocation: what bin/checkoutctl.ts hands to runCli. */
export type Command =
  | { name: 'get', id: string }
  | { name: 'list', status: 'pending' | 'dead', limit: number, cursor?: string | undefined }
  | { name: 'replay', id: string }
  | { name: 'replay-all-dead' }
  | { name: 'purge-dead', olderThanMs?: number | undefined, yes: boolean }
  | { name: 'stats' }
  | { name: 'doctor' }
  | { name: 'migrate', action: 'start' | 'status' | 'finish' }

export interface Invocation {
  command: Command
  json: boolean
}

/** Refusals that need no Redis: checked before connecting, so a refused command leaves no trace. */
export function usageProblem (command: Command): string | undefined {
  if (command.name === 'purge-dead' && command.olderThanMs === undefined && !command.yes) {
    // It never asks, so a script cannot hang on a prompt.
    return 'purge --dead without --older-than removes every dead letter; add --yes to do that'
  }
  return undefined
}

export const DEFAULT_LIMIT = 50
export const MAX_LIMIT = 1000

export const USAGE = `Usage: checkoutctl <command> [options]

Commands:
  get <id>                                   the hold of an order, as the API shows it
  list --status pending|dead [--limit N] [--cursor C]
                                             pending holds or dead letters, a page at a time
                                             (N from 1 to ${MAX_LIMIT}, default ${DEFAULT_LIMIT}); prints the next cursor
  replay <id>                                queue the dead letter(s) of an order again, with fresh attempts
  replay --all-dead                          queue every dead letter again
  purge --dead --older-than <duration>       remove dead letters that died longer ago than 7d, 12h, 30m, 45s
  purge --dead --yes                         remove every dead letter
  stats                                      pending holds, dead letters, expiry jobs, how expiries were found
  doctor                                     is this Redis fit: eviction, persistence, version, slots, keyspace events, pub/sub
  migrate start                              switch the prefix from key format 1 or 2 to 3 online (docs/keys.md)
  migrate --status                           the migration's phase and what is left in the old layout
  migrate finish                             end the migration once the old layout holds nothing only it can serve

Options:
  --json     print one JSON document on stdout (errors too: {"error":{"code","message"}})
  --help     print this text

Environment: REDIS_URL, KEY_PREFIX, KEY_SHARDS, REDIS_COMMAND_TIMEOUT_MS (as for the API and the worker).
Exit codes: 0 done, 1 failed (Redis unavailable, not found, layout mismatch), 2 usage error, 3 doctor found a check failed.`
