// Type declarations of gatehouse-client (hand-written; see src/index.mjs).
// The shapes of the server's answers are held to the HTTP API's contract,
// openapi.yaml, by test/contract.ts, and these declarations compile with
// lib es2017 alone (no DOM) and against miniprogram-api-typings' `wx` by
// test/typings.test.js (npm test runs both).

/** The captcha mini-program whose jump result arrives in App.onShow. */
export const TENCENT_CAPTCHA_MINIPROGRAM: 'wx5a3a7366fd07e119'

/** The errCodes of a wrong answer: the captcha is spent, and a new one is due. Any other failure keeps it. */
export const WRONG_ANSWER: readonly ['uni-captcha-verify-fail', 'uni-captcha-verify-overdue', 'uni-captcha-text-required']

/** Every answer has uniCloud's shape: errCode 0 on success, plus the data. */
export interface Envelope {
  errCode: 0
  errMsg: string
}

/** Every errCode the server answers with (openapi.yaml, components.schemas.ErrCode). */
export type ErrCode =
  | 'invalid-request'
  | 'uni-captcha-scene-required'
  | 'uni-captcha-deviceId-required'
  | 'uni-captcha-text-required'
  | 'uni-captcha-verify-fail'
  | 'uni-captcha-verify-overdue'
  | 'uni-captcha-refresh-fail'
  | 'uni-captcha-create-fail'
  | 'uni-captcha-size-not-allowed'
  | 'rate-limited'
  | 'store-unavailable'
  | 'wx-code-required'
  | 'wx-code-invalid'
  | 'wx-phone-code-required'
  | 'wx-phone-code-invalid'
  | 'wx-user-blocked'
  | 'wx-rate-limited'
  | 'wx-upstream-error'
  | 'wx-decrypt-failed'
  | 'wx-signature-mismatch'
  | 'wx-phone-code-required'
  | 'wx-phone-code-invalid'
  | 'session-required'
  | 'session-invalid'
  | 'session-expired'
  | 'ticket-required'
  | 'ticket-reused'
  | 'ticket-expired'
  | 'ticket-rejected'
  | 'ticket-upstream-error'
  | 'ticket-not-solved'
  | 'guard-captcha-required'
  | 'guard-tencent-required'
  | 'guard-pass-invalid'
  | 'guard-invalid-device'
  | 'guard-refused'
  | 'sms-mobile-invalid'
  | 'sms-country-not-allowed'
  | 'sms-send-too-soon'
  | 'sms-daily-limit'
  | 'sms-budget-exhausted'
  | 'sms-upstream-limited'
  | 'sms-upstream-error'
  | 'sms-code-required'
  | 'sms-code-invalid'
  | 'sms-code-expired'
  | 'deadline-exceeded'
  | 'internal-error'
/**
 * The client's own: no answer ('network-error'), an answer without errCode
 * such as API Gateway's 403 ('http-<status>'), no wx object for the WeChat
 * session, no fetch for the default transport, no CSPRNG for the device id,
 * and guard.run with `{ level }` whose obtainPass gave nothing.
 */
export type ClientErrCode =
  | 'network-error'
  | `http-${number}`
  | 'wx-unavailable'
  | 'fetch-unavailable'
  | 'random-unavailable'
  | 'challenge-cancelled'

/** A failure: the server's errCode/errMsg and HTTP status, or a network error (status 0). */
export class GatehouseError extends Error {
  constructor(errCode: string, errMsg: string, status?: number, data?: unknown, retryAfter?: number)
  /** e.g. 'uni-captcha-verify-fail', 'session-invalid', 'rate-limited'; 'http-<status>' when the body has none; 'network-error'. */
  readonly errCode: ErrCode | ClientErrCode | (string & {})
  readonly errMsg: string
  /** HTTP status; 0 when no answer came. */
  readonly status: number
  /** The whole body (e.g. captchaCode and captchaMsg of ticket-rejected). */
  readonly data?: unknown
  /** Seconds, from the Retry-After header when present (429). */
  readonly retryAfter?: number
}

// ---- transports -------------------------------------------------------------

export interface TransportRequest {
  method: 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH'
  url: string
  headers: Record<string, string>
  body?: unknown
}
export interface TransportResponse {
  status: number
  /** A header of the response, by name (any case). */
  headers(name: string): string | null | undefined
  /** The body: parsed JSON, else the text. */
  data: unknown
}
export type Transport = (request: TransportRequest) => Promise<TransportResponse>

export interface TransportOptions {
  /** Milliseconds; default 10000. */
  timeout?: number
}
/** The shape of uni.request and wx.request that the transports use. */
export interface RequestApi {
  request(options: {
    url: string
    method?: string
    header?: Record<string, string>
    data?: unknown
    timeout?: number
    dataType?: string
    success?(res: { statusCode: number; header?: Record<string, string>; data: unknown }): void
    fail?(err: { errMsg?: string }): void
  }): unknown
}

/** The part of `fetch` the transport uses: any WHATWG fetch fits (named here without the DOM types). */
export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string; signal?: any },
) => Promise<{ status: number; headers: { get(name: string): string | null }; text(): Promise<string> }>

/** Over `fetchImpl`, or the platform's `fetch` when there is one (else every call rejects with 'fetch-unavailable'). */
export function fetchTransport(fetchImpl?: FetchLike, options?: TransportOptions): Transport
export function uniTransport(uni: RequestApi, options?: TransportOptions): Transport
export function wxTransport(wx: RequestApi, options?: TransportOptions): Transport

// ---- storage ------------------------------------------------------------------

/** Where the client keeps its session token and device id; may be async. */
export interface ClientStorage {
  get(key: string): unknown | Promise<unknown>
  set(key: string, value: unknown): void | Promise<void>
  remove(key: string): void | Promise<void>
}
export interface SyncStorageApi {
  getStorageSync(key: string): any
  setStorageSync(key: string, value: any): void
  removeStorageSync(key: string): void
}
export function memoryStorage(): ClientStorage
export function uniStorage(api: SyncStorageApi): ClientStorage
export function wxStorage(api: SyncStorageApi): ClientStorage
export function webStorage(store: {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}): ClientStorage

// ---- the client -----------------------------------------------------------------

type Callback<T> = { success?(res: T): void; fail?(err: unknown): void }
/** The `wx` or `uni` object, for wx.login and wx.checkSession, and wx.getRandomValues where `crypto` is missing. */
export interface LoginApi {
  login(options: Callback<{ code: string }>): unknown
  checkSession(options: Callback<unknown>): unknown
  getRandomValues?(options: { length: number } & Callback<{ randomValues: ArrayBuffer }>): unknown
}

/** Time as the client sees it: the platform's by default; tests hand in one they move by hand. */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number
  setTimeout(callback: () => void, ms: number): unknown
  clearTimeout(timer: any): void
}

export interface ClientOptions {
  /** The API's base URL, e.g. https://<api-id>.execute-api.<region>.amazonaws.com */
  baseUrl: string
  /** Default: fetchTransport(). */
  transport?: Transport
  /** Default: memoryStorage(). */
  storage?: ClientStorage
  /** Sent as Accept-Language: 'en' for English messages, Chinese otherwise. */
  locale?: string | (() => string)
  /**
   * Default: a random id kept in storage, from crypto.getRandomValues or
   * wx.getRandomValues (never Math.random: without either, calls reject
   * with 'random-unavailable').
   */
  deviceId?: string | (() => string | Promise<string>)
  /** For the WeChat session (and getRandomValues): wx, or uni on mp-weixin. */
  wx?: LoginApi
  /** Storage key prefix; default 'gatehouse:'. */
  prefix?: string
  /** Default: the platform's Date.now, setTimeout and clearTimeout. */
  clock?: Clock
}

export interface RequestInit {
  body?: unknown
  query?: Record<string, string | number | boolean | undefined | null>
  headers?: Record<string, string>
  /** Sent as Authorization: Bearer <token>. */
  token?: string
  /**
   * What opens a guarded door: a passToken (X-Gatehouse-Pass), or the
   * challenge itself (SPEC §13): an answer (X-Gatehouse-Captcha, and its
   * X-Device-Id) or a Tencent ticket (X-Gatehouse-Ticket, X-Gatehouse-Randstr).
   */
  pass?: Proof
}

/** Only where the scene's config says `clientSize: true`; else the server answers 'uni-captcha-size-not-allowed'. */
export interface CaptchaSize {
  width?: number
  height?: number
}
export interface CaptchaImage extends Envelope {
  /** data:image/png;base64,… */
  captchaBase64: string
}
/** What a solved challenge earns: a pass that one door of its scene redeems, once (SPEC §9). */
export interface PassResult extends Envelope {
  /** Send it as X-Gatehouse-Pass (RequestInit.pass), or hand it to your back end for POST /guard/check. */
  passToken: string
  /** Epoch milliseconds. */
  passExpired: number
}
export interface TicketResult extends PassResult {
  evilLevel?: number
  /** Present when the scene's tencent policy admitted a ticket Tencent could not vouch for (a disaster-recovery ticket, CaptchaCode 21 or 26, Tencent unreachable). */
  degraded?: true
}
/** A code sent: when the number may ask again, and how long the code lives, in seconds. */
export interface SmsSent extends Envelope {
  resendAfter: number
  expiresIn: number
}
/** What a "获取验证码" button shows; the components render it. */
export interface SmsFlowState {
  sending: boolean
  /** Seconds before the button may send again: resendAfter after a sent code, retryAfter after a refusal. */
  waiting: number
  error: GatehouseError | null
}
export interface SmsFlowHandlers {
  onChange?(state: Readonly<SmsFlowState>): void
  /** Asked when the scene's guard wants a pass before the send (show the captcha): a passToken, or nothing to give up. */
  obtainPass?: ObtainPass
}
/** One "获取验证码" button's state and rules (the components use it; so may yours). */
export interface SmsFlow {
  readonly state: Readonly<SmsFlowState>
  /** Sends a code through the guard; null when refused (state.error says why) or while sending or waiting. */
  send(mobile: string): Promise<SmsSent | null>
  /** The client's sms.verify for this scene. */
  verify(mobile: string, code: string): Promise<PassResult>
  /** Ends the countdown. */
  stop(): void
}
export type GuardLevel = 'none' | 'image' | 'tencent'
/** A signal that set a level: the client's failures, its requests (velocity), the scene's or door's `always`, WeChat's risk rank of the user. */
export type GuardReason = 'failures' | 'requests' | 'always' | 'wxRisk'
export interface GuardStatus extends Envelope {
  level: GuardLevel
  /** The signals that set the level, in this order; empty at 'none'. */
  reasons: GuardReason[]
}
/** A captcha answer for the door to check itself (the short way): `HandedAnswer`, or just `{ captcha }` for this client's device. */
export interface CaptchaAnswer {
  captcha: string
  /** The device that created the captcha; this client's by default. */
  deviceId?: string
  scene?: string
}
/** A Tencent ticket for the door to check itself: the TencentCaptcha callback object as it comes, or `ticket.take`'s result. */
export interface TicketAnswer {
  ticket: string
  randstr?: string
  /** A callback with ret ≠ 0 (closed) counts as giving up. */
  ret?: number
  [key: string]: unknown
}
/** What a guarded door takes: a passToken, or the challenge itself (SPEC §13). */
export type Proof = string | CaptchaAnswer | TicketAnswer
/** What the guard asks obtainPass for. */
export interface PassNeed {
  level: 'image' | 'tencent'
  scene: string
  /** The door refused the last one (a wrong answer, a used pass): ask again. */
  refused?: true
}
/** Meets the level the guard asks for: a passToken (the pass way), an answer or a ticket (the short way), or nothing to give up. */
export type ObtainPass = (need: PassNeed) => Proof | null | undefined | Promise<Proof | null | undefined>
/** guard.run's options. */
export interface GuardRunOptions {
  /** The level known up front (a scene that always asks, a form that shows its captcha): obtainPass first, no probe, no status. */
  level?: 'image' | 'tencent'
}

/** What a captcha widget shows; the components render it. */
export interface CaptchaFlowState {
  /** The image's data URL; '' until the first one comes. */
  image: string
  loading: boolean
  verifying: boolean
  /** Seconds left of a `retryAfter` wait; nothing is sent until 0. */
  waiting: number
  /** The last failure, until the next verify. */
  error: GatehouseError | null
}
export interface CaptchaFlowHandlers {
  size?: CaptchaSize
  /** The scene's captcha lifetime (`expiresDate`) in seconds; default 180. The image refreshes itself 10 s before it ends. */
  lifetime?: number
  onChange?(state: Readonly<CaptchaFlowState>): void
  onPass?(result: PassResult): void
  /** 'captcha': the image refreshed itself before the captcha expired; 'pass': a pass went unused past passExpired (a new image is on its way). */
  onExpired?(event: { kind: 'captcha' | 'pass' }): void
  /** wrongAnswer: one of WRONG_ANSWER (the captcha is spent and a new image is on its way); otherwise the image and answer stand. */
  onError?(error: GatehouseError, wrongAnswer: boolean): void
}
/** An answer handed to the caller, to go with its own request instead of POST /captcha/verify. */
export interface HandedAnswer {
  captcha: string
  deviceId: string
  scene: string
}
/** One captcha widget's state and rules (the components use it; so may yours). */
export interface CaptchaFlow {
  readonly state: Readonly<CaptchaFlowState>
  /** The first image (POST /captcha/create). */
  start(): Promise<void>
  /** A new image; nothing while a wait runs. Answers to loads it superseded are dropped. */
  refresh(): Promise<void>
  /** One at a time (a second call gets the first's promise); null on failure, or while a wait runs. */
  verify(answer: string): Promise<PassResult | null>
  answer(text: string): Promise<HandedAnswer>
  /** Ends the timers; answers still on their way are dropped. */
  stop(): void
}

/** A new session token (POST /wx/session/refresh ends the old one). */
export interface RefreshResult extends Envelope {
  token: string
  /** Epoch milliseconds. */
  tokenExpired: number
}
export interface LoginResult extends RefreshResult {
  userInfo?: Record<string, unknown>
}
/** POST /wx/session/refresh: the new token (the old one has ended). */
export interface RefreshResult extends Envelope {
  token: string
  /** Epoch milliseconds. */
  tokenExpired: number
}
export interface SessionInfo extends Envelope {
  openid: string
  unionid?: string
  tokenExpired: number
}
export interface PhoneResult extends Envelope {
  phoneNumber: string
  purePhoneNumber: string
  countryCode: string
}
export interface LoginExtra {
  encryptedData?: string
  iv?: string
  rawData?: string
  signature?: string
  /** End the user's other sessions (SPEC §10). */
  single?: boolean
}

/** The TencentCaptcha callback result (web and app). */
export interface TencentCaptchaResult {
  ret: number
  ticket?: string
  randstr?: string
  errorCode?: number
  errorMessage?: string
  [key: string]: unknown
}
/** App.onShow options (the part read here). */
export interface ShowOptions {
  referrerInfo?: { appId?: string; extraData?: Record<string, any> | null }
}

export interface Client {
  /** Any call: resolves the body when errCode is 0, rejects with GatehouseError otherwise. */
  request<T = Envelope & Record<string, unknown>>(method: TransportRequest['method'], path: string, init?: RequestInit): Promise<T>
  deviceId(): Promise<string>
  captcha: {
    create(scene: string, size?: CaptchaSize): Promise<CaptchaImage>
    refresh(scene: string, size?: CaptchaSize): Promise<CaptchaImage>
    verify(scene: string, answer: string): Promise<PassResult>
    /** The state of a captcha widget for `scene`, under the rules of the components. */
    flow(scene: string, handlers?: CaptchaFlowHandlers): CaptchaFlow
  }
  guard: {
    /** GET /guard/status?scene=… (device id in X-Device-Id). */
    status(scene: string): Promise<GuardStatus>
    /**
     * Runs call(undefined); on a 403 asks GET /guard/status, gets a pass or
     * the challenge itself through obtainPass, and runs call(proof); a
     * refused proof asks again (refused: true), three times at most. With
     * `{ level }`, obtainPass comes first and no probe is sent.
     */
    run<T>(scene: string, call: (pass: Proof | undefined) => Promise<T>, obtainPass: ObtainPass, options?: GuardRunOptions): Promise<T>
    /** run() for request(method, path, { ...init, pass }). */
    request<T = Envelope & Record<string, unknown>>(
      scene: string,
      method: TransportRequest['method'],
      path: string,
      init: RequestInit | undefined,
      obtainPass: ObtainPass,
      options?: GuardRunOptions,
    ): Promise<T>
  }
  sms: {
    /** POST /sms/send: a door of the scene's guard, each send counted as a request of the scene (send the pass when its level asks for one; a refusal at the door, 403, holds `level` and `reasons` in its `data`). mobile: E.164 (+8613800138000) or 11 mainland digits. */
    send(scene: string, mobile: string, pass?: string): Promise<SmsSent>
    /** POST /sms/verify: a pass of kind sms, which a door of the scene redeems once (its context then holds `mobile`). */
    verify(scene: string, mobile: string, code: string): Promise<PassResult>
    /** The state of a "获取验证码" button for `scene`, under the rules of the components. */
    flow(scene: string, handlers?: SmsFlowHandlers): SmsFlow
  }
  wx: {
    login(extra?: LoginExtra): Promise<LoginResult>
    /** The stored token while it lives and wx.checkSession passes; else logs in. */
    token(): Promise<string>
    /**
     * A bearer request; logs in again and retries once when the session is
     * gone: session-invalid / session-expired, or API Gateway's bare 401/403
     * in front of a protected route while GET /wx/session says so.
     */
    request<T = Envelope & Record<string, unknown>>(method: TransportRequest['method'], path: string, init?: RequestInit): Promise<T>
    get(): Promise<SessionInfo>
    phone(code: string): Promise<PhoneResult>
    refresh(): Promise<RefreshResult>
    logout(): Promise<void>
    logoutEverywhere(): Promise<void>
  }
  ticket: {
    verify(result: { ticket: string; randstr?: string }, options?: { scene?: string }): Promise<TicketResult>
    /** null when the user closed the captcha (ret ≠ 0); a trerror_/terror_ disaster-recovery ticket goes to the server, whose scene policy rejects it (ticket-rejected, captchaCode 21) or admits it with degraded: true. */
    fromWeb(result: TencentCaptchaResult, options?: { scene?: string }): Promise<TicketResult | null>
    /** The mini-program jump result, once: null when absent, not solved, or already handed on. */
    take(showOptions: ShowOptions): { ticket: string } | null
    fromShow(showOptions: ShowOptions, options?: { scene?: string }): Promise<TicketResult | null>
  }
}

export function createClient(options: ClientOptions): Client
