// TypeScript's compiler on a project, for the typings tests, and the
// scratch directory their projects are written to.

import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before } from 'node:test'
import { promisify } from 'node:util'

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')

/**
 * Writes `dir`/tsconfig.json, strict and emitting nothing, with
 * `compilerOptions` over those and `files`, and compiles it: resolves
 * { ok, output } (output holds the diagnostics when it fails). The standard
 * library is not ours to check (skipDefaultLibCheck); everything else is.
 */
export async function compileProject(dir, { compilerOptions, files }) {
  const tsconfig = join(dir, 'tsconfig.json')
  const defaults = { strict: true, noEmit: true, skipDefaultLibCheck: true, module: 'esnext', moduleResolution: 'bundler', types: [] }
  await writeFile(tsconfig, JSON.stringify({ compilerOptions: { ...defaults, ...compilerOptions }, files }))
  try {
    await promisify(execFile)(process.execPath, [tsc, '-p', tsconfig, '--pretty', 'false'])
    return { ok: true, output: '' }
  } catch (err) {
    if (err.code === undefined || typeof err.stdout !== 'string') throw err
    return { ok: false, output: err.stdout + err.stderr }
  }
}

/** A directory for the test file's projects (its before and after hooks): call the result for its path. */
export function scratchDir(prefix) {
  let dir
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix))
  })
  after(() => dir && rm(dir, { recursive: true, force: true }))
  return () => dir
}
