// POST /guard/check from a Node.js back end, signed with SigV4 (the route is
// AWS_IAM-authorized in template.yaml). docs/guard.md shows this file.
import { Sha256 } from '@aws-crypto/sha256-js'
import { HttpRequest } from '@smithy/protocol-http'
import { SignatureV4 } from '@smithy/signature-v4'

/**
 * Asks gatehouse whether a request of `scene` from `userIp` (and `deviceId`)
 * may pass, redeeming `passToken` when a pass is needed. Resolves to the
 * answer: `{errCode: 0, level, pass?}` when admitted, or `{errCode:
 * "guard-captcha-required" | "guard-tencent-required" | "guard-pass-invalid"}`
 * (HTTP 403) when not.
 *
 * `api` is the API's base URL (the stack's ApiUrl output or custom domain),
 * `credentials` the back end's AWS credentials (its role's, e.g. from
 * `@aws-sdk/credential-providers`' fromNodeProviderChain()).
 */
export async function checkPass({ api, region, credentials, scene, passToken, deviceId, userIp }) {
  const { url, headers, body } = await signedCheck({ api, region, credentials, scene, passToken, deviceId, userIp })
  const response = await fetch(url, { method: 'POST', headers, body })
  return { status: response.status, ...(await response.json()) }
}

/** The signed request of `checkPass`: `{url, headers, body}`. */
export async function signedCheck({ api, region, credentials, scene, passToken, deviceId, userIp }) {
  const url = new URL('/guard/check', api)
  const body = JSON.stringify({ scene, passToken, deviceId, userIp })
  const request = new HttpRequest({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    path: url.pathname,
    headers: { host: url.host, 'content-type': 'application/json' },
    body,
  })
  const signer = new SignatureV4({ service: 'execute-api', region, credentials, sha256: Sha256 })
  const signed = await signer.sign(request)
  return { url, headers: signed.headers, body }
}
