import { spawnSync } from 'node:child_process'
import { cpus } from 'node:os'
import { root } from './children.js'
import { redisVersion } from './redis-server.js'

/** What the results depend on besides the code: the machine, and which commit of the code ran. */
export function describeMachine (): { text: string, redis: string } {
  const redis = redisVersion()
  const cpu = cpus()
  return {
    redis,
    text: `${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}, Redis ${redis} ` +
      '(default settings: hz 10, no RDB; AOF only in scenario E)'
  }
}

/** The commit of the code under test, and whether src/ or workers/ had uncommitted changes. */
export function codeVersion (): string {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' })
  if (head.status !== 0) return 'unknown (not a git checkout)'
  const status = spawnSync('git', ['status', '--porcelain', '--', 'src', 'workers'], { cwd: root, encoding: 'utf8' })
  const dirty = status.status === 0 && status.stdout.trim() !== ''
  return `commit ${head.stdout.trim()}${dirty ? ', with uncommitted changes in src/ or workers/' : ''}`
}
