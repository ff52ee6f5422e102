// The package as npm ships it: the two committed builds are what build.mjs
// makes from src/ now (byte for byte), they fit their size budgets, use no
// built-in newer than ES2017, export the same, and package.json points every
// runtime (bundlers, require, WeChat's build npm, TypeScript) at files that
// exist.

import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

import { OUTPUTS, bundle } from '../build.mjs'

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const read = (path) => readFileSync(join(pkgDir, path), 'utf8')
const pkg = JSON.parse(read('package.json'))

/**
 * Gzipped bytes (level 9) of each shipped file: issue 20's ESM ≤ 4 KB and
 * CommonJS ≤ 5 KB. The ES module's 4 KiB is what it cost before the
 * CommonJS build came, and it still fits with the SMS client and the short
 * way (issue 22) in; CommonJS carries esbuild's export shim on top.
 */
const BUDGET = { 'dist/index.mjs': 4096, 'miniprogram/index.js': 5120 }

/**
 * Built-ins newer than ES2017, as members (`.name`) and as globals. esbuild
 * lowers syntax to `target: 'es2017'` but leaves built-ins alone, so a
 * `Promise.prototype.finally` or an `Object.fromEntries` in src/ would reach
 * an older WeChat base library as they are.
 */
const NEWER_MEMBERS = [
  'finally', // ES2018
  'flat', 'flatMap', 'fromEntries', 'trimStart', 'trimEnd', 'description', // ES2019
  'matchAll', 'allSettled', // ES2020
  'replaceAll', 'any', // ES2021
  'at', 'hasOwn', // ES2022
  'findLast', 'findLastIndex', 'toSorted', 'toReversed', 'toSpliced', 'with', // ES2023
  'groupBy', 'withResolvers', 'isWellFormed', 'toWellFormed', // ES2024
  'union', 'intersection', 'difference', 'isSubsetOf', 'isSupersetOf', 'isDisjointFrom', 'try', // ES2025
]
const NEWER_GLOBALS = ['globalThis', 'BigInt', 'WeakRef', 'FinalizationRegistry', 'AggregateError', 'structuredClone']

/** Every use of a built-in newer than ES2017 in `code`. */
export function newerBuiltIns(code) {
  const members = new RegExp(`\\.(${NEWER_MEMBERS.join('|')})\\b(?!\\s*[:=][^=])`, 'g')
  const globals = new RegExp(`(?<![.\\w$])(${NEWER_GLOBALS.join('|')})\\b`, 'g')
  return [...code.matchAll(members), ...code.matchAll(globals)].map((m) => m[0])
}

describe('the builds', () => {
  for (const { path, format } of OUTPUTS) {
    it(`${path} is build.mjs's ${format} build of src/ as it is now`, async () => {
      assert.ok(existsSync(join(pkgDir, path)), `${path} is missing: run node build.mjs in clients/js`)
      assert.ok(read(path) === (await bundle(format)), `${path} is stale: run node build.mjs in clients/js and commit it`)
    })

    it(`${path} is at most ${BUDGET[path]} bytes gzipped`, (t) => {
      const bytes = readFileSync(join(pkgDir, path))
      const gzipped = gzipSync(bytes, { level: 9 }).length
      t.diagnostic(`${path}: ${bytes.length} bytes, ${gzipped} gzipped (zlib level 9; gzip -9 < clients/js/${path} | wc -c says a few bytes more)`)
      assert.ok(gzipped <= BUDGET[path], `${gzipped} bytes gzipped, over the ${BUDGET[path]}-byte budget`)
    })

    it(`${path} uses no built-in newer than ES2017`, () => {
      assert.deepEqual(newerBuiltIns(read(path)), [])
    })
  }

  it('the WeChat component, shipped as written, uses no built-in newer than ES2017 either', () => {
    for (const file of ['index.js', 'strings.js', 'behavior.js']) {
      assert.deepEqual(newerBuiltIns(read(`miniprogram/gatehouse-captcha/${file}`)), [], file)
    }
  })

  it('the check finds what it looks for', () => {
    const planted = 'p.finally(f);Object.fromEntries(e);a.at(-1);const g=globalThis;x.flatMap(y)'
    assert.deepEqual(newerBuiltIns(planted).sort(), ['.at', '.finally', '.flatMap', '.fromEntries', 'globalThis'])
    // Our own names that only look alike are not flagged: a key, an assignment.
    assert.deepEqual(newerBuiltIns('({any:1});o.with=2;x.atom();y.finallyDone'), [])
  })

  it('both builds export the same names, and work', async () => {
    const esm = await import('../dist/index.mjs')
    const cjs = createRequire(import.meta.url)('../miniprogram/index.js')
    assert.deepEqual(Object.keys(cjs).sort(), Object.keys(esm).sort())
    for (const mod of [esm, cjs]) {
      const client = mod.createClient({ baseUrl: 'http://127.0.0.1:9', deviceId: 'd' })
      assert.equal(typeof client.captcha.flow, 'function')
      assert.ok(new mod.GatehouseError('x', 'y') instanceof Error)
    }
  })
})

describe('package.json', () => {
  it('points bundlers, require, WeChat and TypeScript at files that exist, and ships them', () => {
    assert.equal(pkg.type, undefined, 'no "type": .js is CommonJS (the miniprogram build), .mjs the ES module')
    assert.equal(pkg.main, './miniprogram/index.js')
    assert.equal(pkg.module, './dist/index.mjs')
    assert.deepEqual(pkg.exports['.'], { types: './index.d.ts', import: './dist/index.mjs', require: './miniprogram/index.js' })
    // WeChat's build npm copies this directory; require('gatehouse-client') finds its index.js.
    assert.equal(pkg.miniprogram, 'miniprogram')
    for (const path of [pkg.main, pkg.module, pkg.types, `${pkg.miniprogram}/index.js`, 'LICENSE', 'README.md']) {
      assert.ok(existsSync(join(pkgDir, path)), `${path} is missing`)
      assert.ok(pkg.files.some((f) => path.replace('./', '').startsWith(f.replace(/\/$/, ''))), `${path} is not in files`)
    }
  })

  it('names its licence, repository and issues; the README links absolutely', () => {
    assert.equal(pkg.license, 'MIT OR Apache-2.0')
    const licence = read('LICENSE')
    assert.match(licence, /MIT License/)
    assert.match(licence, /Apache License\s+Version 2\.0, January 2004/)
    const repo = pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '')
    assert.match(repo, /^https:\/\/github\.com\/[\w-]+\/[\w-]+$/)
    assert.equal(pkg.repository.directory, 'clients/js')
    assert.equal(pkg.bugs.url, `${repo}/issues`)
    // The uni_module carries the same licence and repository.
    const uniModule = join(pkgDir, '../uni-app/uni_modules/gatehouse-captcha')
    assert.equal(readFileSync(join(uniModule, 'license.md'), 'utf8'), licence)
    assert.equal(JSON.parse(readFileSync(join(uniModule, 'package.json'), 'utf8')).repository, repo)
    // On npmjs.com a relative link leads nowhere.
    const links = [...read('README.md').matchAll(/\]\(([^)]+)\)/g)].map((m) => m[1])
    assert.ok(links.length > 0)
    for (const link of links) assert.ok(/^(https:\/\/|#)/.test(link), `a relative link: ${link}`)
    assert.ok(links.some((link) => link.startsWith(`${repo}/`)), 'links into the repository')
  })
})
