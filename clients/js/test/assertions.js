// Assertions the client tests share.

import assert from 'node:assert/strict'

import { GatehouseError } from '../dist/index.mjs'

/** Resolves to the GatehouseError `promise` rejects with (fails if it resolves). */
export async function failure(promise) {
  try {
    await promise
  } catch (err) {
    assert.ok(err instanceof GatehouseError, `expected a GatehouseError, got ${err && err.stack}`)
    return err
  }
  assert.fail('expected a rejection')
}
