// index.d.ts in a mini-program's TypeScript project: lib es2017 alone, no
// DOM, WeChat's `wx` from miniprogram-api-typings.
// - index.d.ts checks in full with lib es2017 and no other types; and fails
//   once it names a DOM type (a check that cannot fail checks nothing);
// - typings/miniprogram.ts compiles against miniprogram-api-typings (its
//   expect-error lines must each be an error). Declaration files go
//   unchecked there (skipLibCheck): the 1 MB of WeChat's typings would triple
//   the time, and index.d.ts is checked by the first.

import assert from 'node:assert/strict'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

import { compileProject, scratchDir } from './tsc.js'

const here = dirname(fileURLToPath(import.meta.url))
const clients = resolve(here, '../..')

const work = scratchDir('gatehouse-typings-')

/**
 * Compiles `declarations` (index.d.ts text) alone, or with `miniprogram`
 * typings/miniprogram.ts against it and WeChat's typings; resolves { ok, output }.
 */
async function compile(name, declarations, { miniprogram = false } = {}) {
  const dir = join(work(), name)
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'index.d.ts'), declarations)
  return compileProject(dir, {
    compilerOptions: {
      skipLibCheck: miniprogram,
      lib: ['es2017'],
      target: 'es2017',
      typeRoots: [join(clients, 'node_modules')],
      types: miniprogram ? ['miniprogram-api-typings'] : [],
      paths: { 'gatehouse-client': [join(dir, 'index.d.ts')] },
    },
    files: [miniprogram ? join(here, 'typings/miniprogram.ts') : join(dir, 'index.d.ts')],
  })
}

describe('index.d.ts with lib es2017, no DOM, and miniprogram-api-typings', { concurrency: true }, () => {
  it('index.d.ts checks with lib es2017 and nothing else', async () => {
    const { ok, output } = await compile('alone', await readFile(join(clients, 'js/index.d.ts'), 'utf8'))
    assert.ok(ok, output)
  })

  it('the real wx fits wxTransport, wxStorage and createClient', async () => {
    const { ok, output } = await compile('miniprogram', await readFile(join(clients, 'js/index.d.ts'), 'utf8'), { miniprogram: true })
    assert.ok(ok, output)
  })

  it('fails once the declarations name a DOM type', async () => {
    const declarations = (await readFile(join(clients, 'js/index.d.ts'), 'utf8')).replace(
      'export function fetchTransport(fetchImpl?: FetchLike,',
      'export function fetchTransport(fetchImpl?: typeof fetch,',
    )
    assert.match(declarations, /typeof fetch/)
    const { ok, output } = await compile('dom', declarations)
    assert.equal(ok, false)
    assert.match(output, /Cannot find name 'fetch'/)
  })
})
