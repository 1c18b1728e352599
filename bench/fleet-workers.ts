import type { NodeChild } from './children.js'
import { bullmq } from './systems/bullmq.js'
import { ours } from './systems/ours.js'
import type { Cell } from './systems/types.js'

/** Worker fleets for bench:fleet: the processes, environment and readiness checks of bench/systems/ours.ts and bullmq.ts. */
export async function startExpiryFleet (cell: Cell, n: number): Promise<NodeChild[]> {
  return await ours.startWorkers(cell, n)
}

export async function startBullmqFleet (cell: Cell, n: number): Promise<NodeChild[]> {
  return await bullmq.startWorkers(cell, n)
}
