// The TypeScript declarations against openapi.yaml: openapi-typescript turns
// the contract into types, and tsc compiles contract.ts, which holds every
// answer and request shape of index.d.ts to them. Then the same check runs
// on a contract and on declarations broken on purpose, and must fail there:
// a check that cannot fail checks nothing.

import assert from 'node:assert/strict'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

import openapiTS, { astToString } from 'openapi-typescript'

import { compileProject, scratchDir } from './tsc.js'

const here = dirname(fileURLToPath(import.meta.url))
const repo = resolve(here, '../../..')

const work = scratchDir('gatehouse-contract-')

/**
 * Compiles contract.ts against `spec` (OpenAPI text) and `declarations`
 * (index.d.ts text) in `dir`; resolves { ok, output }.
 */
async function compile(dir, spec, declarations) {
  const specPath = join(dir, 'openapi.yaml')
  await writeFile(specPath, spec)
  const types = astToString(await openapiTS(new URL(`file://${specPath}`)))
  await writeFile(join(dir, 'openapi.d.ts'), types)
  await writeFile(join(dir, 'index.d.ts'), declarations)
  return compileProject(dir, {
    compilerOptions: {
      lib: ['es2022', 'dom'],
      target: 'es2022',
      paths: {
        'gatehouse-openapi': [join(dir, 'openapi.d.ts')],
        'gatehouse-client': [join(dir, 'index.d.ts')],
      },
    },
    files: [join(here, 'contract.ts')],
  })
}

const read = (path) => readFile(join(repo, path), 'utf8')

/** `text` with `from` replaced by `to`, which must be there. */
function breaking(text, from, to) {
  assert.ok(text.includes(from), `nothing to break: ${from}`)
  return text.replace(from, to)
}

// Four compiles of a few seconds each: side by side.
describe('index.d.ts against openapi.yaml', { concurrency: true }, () => {
  it('every answer and request shape the client declares is the contract’s', async () => {
    const dir = await mkdtemp(join(work(), 'real-'))
    const { ok, output } = await compile(dir, await read('openapi.yaml'), await read('clients/js/index.d.ts'))
    assert.ok(ok, `index.d.ts and openapi.yaml disagree:\n${output}`)
  })

  it('a field the server answers but the client does not declare fails the check', async () => {
    const dir = await mkdtemp(join(work(), 'spec-'))
    const spec = breaking(
      await read('openapi.yaml'),
      "            captchaBase64:\n",
      "            captchaImage:\n              type: string\n            captchaBase64:\n",
    )
    const { ok, output } = await compile(dir, spec, await read('clients/js/index.d.ts'))
    assert.equal(ok, false)
    assert.match(output, /contract\.ts\(\d+,\d+\).*the property names differ/)
  })

  it('a pass field the client marks optional fails the check', async () => {
    const dir = await mkdtemp(join(work(), 'dts-'))
    const declarations = breaking(await read('clients/js/index.d.ts'), '  passToken: string\n', '  passToken?: string\n')
    const { ok, output } = await compile(dir, await read('openapi.yaml'), declarations)
    assert.equal(ok, false)
    assert.match(output, /required in the contract but optional in the client/)
  })

  it('an errCode the client does not know fails the check', async () => {
    const dir = await mkdtemp(join(work(), 'codes-'))
    const spec = breaking(await read('openapi.yaml'), '        - internal-error\n', '        - internal-error\n        - brand-new-error\n')
    const { ok, output } = await compile(dir, spec, await read('clients/js/index.d.ts'))
    assert.equal(ok, false)
    assert.match(output, /allows values the client type does not/)
  })
})
