import { finishMigration, migrationStatus, startMigration, type MigrationStatus } from '../store/migration.js'
import { fields, type Result } from './output.js'
import type { Session } from './session.js'

export type MigrateAction = 'start' | 'status' | 'finish'

function statusResult (s: MigrationStatus, done?: string): Result {
  const l = s.left
  const shared = s.sharedBases ? ' (shared with format 3)' : ''
  const rows: Array<[string, string | number]> = [
    ['phase', s.phase === 'none' ? `none (key format ${s.format})` : s.phase],
    ...s.phase === 'none'
      ? []
      : [
          ['from format', String(s.from)] as [string, string],
          ['since', s.since ?? '-'] as [string, string],
          ['pending holds left', l.pending] as [string, number],
          [`expiry jobs left${shared}`, s.sharedBases ? '-' : l.jobs.total] as [string, string | number],
          ['  due', s.sharedBases ? '-' : l.jobs.due] as [string, string | number],
          ['  in flight', s.sharedBases ? '-' : l.jobs.running] as [string, string | number],
          [`dead letters left${shared}`, s.sharedBases ? '-' : l.deadLetters] as [string, string | number],
          [`ended holds kept${shared}`, s.sharedBases ? '-' : l.endedHolds] as [string, string | number],
          [`idempotency records${shared}`, s.sharedBases ? '-' : l.idempotencyRecords] as [string, string | number],
          ['finish possible', s.finishable ? 'yes' : 'no'] as [string, string]
        ]
  ]
  return { json: s, text: done ? `${done}\n${fields(rows)}` : fields(rows) }
}

/** `migrate start|--status|finish`: the online switch of a prefix to key format 3 (docs/keys.md "Migrating to format 3"). */
export async function migrateCommand (session: Session, action: MigrateAction, report: (message: string) => void): Promise<Result> {
  const { redis } = session.store
  const { KEY_PREFIX: prefix, KEY_SHARDS: shards } = session.config
  const log = { warn: (message: unknown) => report(`warning: ${typeof message === 'string' ? message : JSON.stringify(message)}`) }
  if (action === 'start') {
    await startMigration(redis, prefix, shards, log, report)
    return statusResult(await migrationStatus(redis, prefix, shards, log), 'switched: new holds go to key format 3')
  }
  if (action === 'finish') return statusResult(await finishMigration(redis, prefix, shards, log), 'finished: the prefix is on key format 3 alone')
  return statusResult(await migrationStatus(redis, prefix, shards, log))
}
