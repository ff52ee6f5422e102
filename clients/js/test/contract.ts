// The client's declarations (index.d.ts, as the module 'gatehouse-client')
// against the HTTP API's contract (openapi.yaml, turned into types by
// openapi-typescript, as the module 'gatehouse-openapi'). contract.test.js
// compiles this with tsc: a type that drifts from the contract is a compile
// error on the line of its check, saying how it differs.

import type { components, paths } from 'gatehouse-openapi'
import type {
  CaptchaImage,
  CaptchaSize,
  Client,
  Envelope,
  ErrCode,
  GuardLevel,
  GuardStatus,
  LoginExtra,
  LoginResult,
  ObtainPass,
  PassResult,
  PhoneResult,
  RefreshResult,
  SessionInfo,
  SmsSent,
  TicketResult,
} from 'gatehouse-client'

type Schemas = components['schemas']

/** The JSON body of `method path` answering `status`. */
type Answer<P extends keyof paths, M extends keyof paths[P], S extends number> = paths[P][M] extends {
  responses: infer R
}
  ? S extends keyof R
    ? R[S] extends { content: { 'application/json': infer B } }
      ? B
      : never
    : never
  : never

/** The JSON request body of `method path`. */
type RequestBody<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  requestBody?: { content: { 'application/json': infer B } }
}
  ? B
  : never

type RequiredKeys<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? never : K }[keyof T]
type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false

/**
 * A and B describe the same values: the same property names, the same ones
 * required, and each assignable to the other (which holds nested objects
 * and field types too).
 */
type Same<A, B> =
  SameKeys<A, B> extends true
    ? [RequiredKeys<A>] extends [RequiredKeys<B>]
      ? [RequiredKeys<B>] extends [RequiredKeys<A>]
        ? [A] extends [B]
          ? [B] extends [A]
            ? true
            : 'the contract allows values the client type does not'
          : 'the client type allows values the contract does not'
        : 'a field is required in the contract but optional in the client'
      : 'a field is required in the client but optional in the contract'
    : 'the property names differ'

/** Compiles only when `T` is `true`; otherwise tsc names the check and says why. */
function agree<T extends true>(_check: T): void {}
declare const check: <A, B>() => Same<A, B>

// The envelope and the errCodes.
agree(check<Envelope, Schemas['Success']>())
agree(check<ErrCode, Schemas['ErrCode']>())
agree(check<GuardLevel, Schemas['Level']>())

// Every answer the client types, route by route.
agree(check<CaptchaImage, Answer<'/captcha/create', 'post', 200>>())
agree(check<CaptchaImage, Answer<'/captcha/refresh', 'post', 200>>())
agree(check<PassResult, Answer<'/captcha/verify', 'post', 200>>())
agree(check<TicketResult, Answer<'/ticket/verify', 'post', 200>>())
agree(check<GuardStatus, Answer<'/guard/status', 'get', 200>>())
agree(check<LoginResult, Answer<'/wx/login', 'post', 200>>())
agree(check<SessionInfo, Answer<'/wx/session', 'get', 200>>())
agree(check<SessionInfo, Answer<'/me', 'get', 200>>())
agree(check<Envelope, Answer<'/wx/session', 'delete', 200>>())

// What the client sends: the fields it lets a caller set are the contract's.
agree(check<CaptchaSize, Pick<RequestBody<'/captcha/create', 'post'>, 'width' | 'height'>>())
agree(check<CaptchaSize, Pick<RequestBody<'/captcha/refresh', 'post'>, 'width' | 'height'>>())
type TicketSent = Parameters<Client['ticket']['verify']>[0] & NonNullable<Parameters<Client['ticket']['verify']>[1]>
// (Tencent's callback object may be posted whole; ticket.verify sends its ticket and randstr.)
type CallbackOnly = 'ret' | 'appid' | 'CaptchaAppId' | 'bizState' | 'errorCode' | 'errorMessage'
agree(check<TicketSent, Omit<RequestBody<'/ticket/verify', 'post'>, 'deviceId' | CallbackOnly>>())
// The levels obtainPass is asked for are levels that need a pass.
agree(check<Parameters<ObtainPass>[0]['level'], Exclude<Schemas['Level'], 'none'>>())

// SPEC §10 (issue 14): the phone number, refresh, ending every session,
// and LoginExtra's `single`.
agree(check<PhoneResult, Answer<'/wx/phone', 'post', 200>>())
agree(check<RefreshResult, Answer<'/wx/session/refresh', 'post', 200>>())
agree(check<Envelope, Answer<'/wx/sessions', 'delete', 200>>())
agree(check<LoginExtra, Omit<RequestBody<'/wx/login', 'post'>, 'code'>>())

// SPEC §15 (issue 23): SMS codes. What the client sends is the contract's
// body (deviceId travels in X-Device-Id), and what it gets back.
agree(check<SmsSent, Answer<'/sms/send', 'post', 200>>())
agree(check<PassResult, Answer<'/sms/verify', 'post', 200>>())
type SmsSendArgs = Parameters<Client['sms']['send']>
agree(check<{ scene: SmsSendArgs[0]; mobile: SmsSendArgs[1] }, Omit<RequestBody<'/sms/send', 'post'>, 'deviceId'>>())
type SmsVerifyArgs = Parameters<Client['sms']['verify']>
agree(
  check<
    { scene: SmsVerifyArgs[0]; mobile: SmsVerifyArgs[1]; code: SmsVerifyArgs[2] },
    Omit<RequestBody<'/sms/verify', 'post'>, 'deviceId'>
  >(),
)
