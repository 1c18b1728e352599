import { toResponse } from '../routes/checkout.js'
import { getCheckout } from '../store/checkout-store.js'
import type { StoreContext } from '../store/context.js'
import { fields, type Result } from './output.js'

/** `get <id>`: the same body GET /checkout/:id answers with. */
export async function getCommand (store: StoreContext, id: string): Promise<Result> {
  const view = toResponse(await getCheckout(store, id))
  const rows = Object.entries(view).map(([name, value]): [string, string | number] =>
    [name, typeof value === 'object' ? JSON.stringify(value) : String(value)])
  return { json: view, text: fields(rows) }
}
