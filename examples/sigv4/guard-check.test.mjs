// The Node.js SigV4 example of docs/guard.md, run against the real dev server, which
// checks SigV4 on /guard/check as API Gateway does, with the development
// credentials below (AWS's documentation example keys, not real ones).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { startDevServer } from '../../clients/js/test/devserver.js'
import { checkPass, signedCheck } from './guard-check.mjs'

const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' }
let server

before(async () => {
  server = await startDevServer({
    // demo: the scene of the dev server's guarded example route, which
    // GUARD_ROUTES must find declared.
    env: { CAPTCHA_CONFIG: JSON.stringify({ scene: { signup: { guard: { mode: 'always' } }, demo: {} } }) },
  })
})
after(() => server?.stop())

async function solvedCaptcha(scene, deviceId) {
  const post = (path, body) =>
    fetch(new URL(path, server.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  await post('/captcha/create', { scene, deviceId })
  const answer = await server.answer(scene, deviceId)
  const verified = await (await post('/captcha/verify', { scene, deviceId, captcha: answer })).json()
  assert.equal(verified.errCode, 0, JSON.stringify(verified))
  return verified.passToken
}

test('the request is signed for execute-api with the given credentials', async () => {
  const { headers } = await signedCheck({ api: server.url, region: 'ap-east-1', credentials, scene: 'signup' })
  assert.match(headers.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/ap-east-1\/execute-api\/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/)
  assert.match(headers['x-amz-date'], /^\d{8}T\d{6}Z$/)
})

test('a back end admits a client once per pass, and asks for one when there is none', async () => {
  const ask = (passToken) =>
    checkPass({ api: server.url, region: 'ap-east-1', credentials, scene: 'signup', passToken, deviceId: 'node-dev-1', userIp: '198.51.100.60' })
  const none = await ask(undefined)
  assert.equal(none.status, 403)
  assert.equal(none.errCode, 'guard-captcha-required')

  const pass = await solvedCaptcha('signup', 'node-dev-1')
  const admitted = await ask(pass)
  assert.equal(admitted.status, 200, JSON.stringify(admitted))
  assert.equal(admitted.level, 'image')
  assert.equal(admitted.pass.kind, 'captcha')
  assert.equal(admitted.pass.deviceId, 'node-dev-1')

  const again = await ask(pass)
  assert.equal(again.errCode, 'guard-pass-invalid')
})

test('a signature by another secret, or none, is refused as API Gateway refuses it', async () => {
  const forged = { ...credentials, secretAccessKey: 'not-the-dev-secret' }
  const mismatch = await checkPass({ api: server.url, region: 'ap-east-1', credentials: forged, scene: 'signup', deviceId: 'node-dev-2' })
  assert.equal(mismatch.status, 403)
  assert.match(mismatch.message, /^The request signature we calculated does not match/)

  const unsigned = await fetch(new URL('/guard/check', server.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ scene: 'signup', deviceId: 'node-dev-2' }),
  })
  assert.equal(unsigned.status, 403)
  assert.equal(unsigned.headers.get('x-amzn-errortype'), 'MissingAuthenticationTokenException')
  assert.deepEqual(await unsigned.json(), { message: 'Missing Authentication Token' })
})

test('the Python example (botocore SigV4Auth) is admitted the same way', async () => {
  const { spawnSync } = await import('node:child_process')
  const pass = await solvedCaptcha('signup', 'py-dev-1')
  const python = process.env.GATEHOUSE_PYTHON || 'python3'
  const script = `
import json, sys
from botocore.credentials import Credentials
import guard_check
creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
for token in [sys.argv[2], sys.argv[2]]:
    print(json.dumps(guard_check.check_pass(sys.argv[1], "ap-east-1", "signup", token, "py-dev-1", "198.51.100.61", creds)))
`
  const run = spawnSync(python, ['-c', script, server.url, pass], { cwd: import.meta.dirname, encoding: 'utf8' })
  assert.equal(run.status, 0, `${python} failed (botocore is in the cfn-lint/sam virtualenv scripts/test.sh puts on PATH):\n${run.stderr}`)
  const [admitted, again] = run.stdout.trim().split('\n').map((line) => JSON.parse(line))
  assert.equal(admitted.status, 200, JSON.stringify(admitted))
  assert.equal(admitted.pass.deviceId, 'py-dev-1')
  assert.equal(again.status, 403)
  assert.equal(again.errCode, 'guard-pass-invalid')
})
