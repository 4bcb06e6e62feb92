// Types of the b24-openlines package (every entry: browser, Node ESM, CommonJS).

/** The kinds of CRM item an open-line chat can belong to. The portal reads the name in any
 * letter case; the types take it in lower case, upper case or capitalized: `'deal'`,
 * `'DEAL'`, `'Deal'`. */
export type CrmEntityType =
  | 'lead' | 'deal' | 'company' | 'contact'
  | Uppercase<'lead' | 'deal' | 'company' | 'contact'>
  | Capitalize<'lead' | 'deal' | 'company' | 'contact'>;

/** The `crmEntityType` an item of a mass send (`crmMessageAddMany`, `sendToCrmItems`) may
 * carry, for the type `E` the caller's items have there:
 * - a `CrmEntityType` literal, as typed in a literal item or with `as const`;
 * - `string`: what TypeScript makes of `'deal'` in items built by `map` or pushed into an
 *   array (`ids.map((id) => ({ crmEntityType: 'deal', crmEntity: id, ... }))`), whose
 *   literal type is widened before the call is seen. Such items are accepted as they are;
 *   the value is checked at run time (`ERROR_ARGUMENT` for that item, nothing sent);
 * - any other literal (`'order'`) is a type error, reported against `CrmEntityType`. */
export type CrmEntityTypeOf<E extends string> =
  string extends E ? string : E extends CrmEntityType ? E : CrmEntityType;

/** An item of `crmMessageAddMany`: `CrmMessageAddParams` whose `crmEntityType` may also be a
 * widened `string` (see `CrmEntityTypeOf`). */
export type CrmMessageAddItem<E extends string = CrmEntityType> =
  Omit<CrmMessageAddParams, 'crmEntityType'> & { crmEntityType: CrmEntityTypeOf<E> };

/** An item of `sendToCrmItems`: `SendToCrmItemParams` whose `crmEntityType` may also be a
 * widened `string` (see `CrmEntityTypeOf`). */
export type SendToCrmItemsItem<E extends string = CrmEntityType> =
  Omit<SendToCrmItemParams, 'crmEntityType'> & { crmEntityType: CrmEntityTypeOf<E> };

/** Parameters of `crmMessageAdd` (sent as CRM_ENTITY_TYPE, CRM_ENTITY, USER_ID, CHAT_ID, MESSAGE). */
export interface CrmMessageAddParams {
  /** The CRM item's type. */
  crmEntityType: CrmEntityType;
  /** The CRM item's id. */
  crmEntity: number | string;
  /** The sender: a user or bot that is a member of the chat. */
  userId: number | string;
  /** The open-line chat of the item. */
  chatId: number | string;
  /** The message text (BB-codes allowed). */
  message: string;
}

/** A CRM item: `{crmEntityType, crmEntity}`. */
export interface CrmEntityParams {
  /** The CRM item's type. */
  crmEntityType: CrmEntityType;
  /** The CRM item's id. */
  crmEntity: number | string;
}

/** Parameters of `crmChatGet`. */
export interface CrmChatGetParams extends CrmEntityParams {
  /** Only chats with an active dialog (default true). */
  activeOnly?: boolean;
}

/** Parameters of `crmChatUserAdd` and `crmChatUserDelete`. */
export interface CrmChatUserParams extends CrmEntityParams {
  /** The user to add or remove. */
  userId: number | string;
  /** The chat; default: the item's last chat. */
  chatId?: number | string;
}

/** Parameters of `crmLeadCreate`. */
export interface CrmLeadCreateParams {
  /** The open-line chat to create the lead from. */
  chatId: number | string;
}

/** One open-line chat of a CRM item. */
export interface CrmChat {
  /** The chat id. */
  chatId: number;
  /** The connector, e.g. `livechat`. */
  connectorId: string;
  /** The connector's title. */
  connectorTitle: string;
}

/** Parameters of `sendToCrmItem`: the CRM item and the text; the chat and the sender are
 * found unless given. */
export interface SendToCrmItemParams {
  /** The CRM item's type. */
  crmEntityType: CrmEntityType;
  /** The CRM item's id. */
  crmEntity: number | string;
  /** The message text (BB-codes allowed). */
  message: string;
  /** Only the item's chats on this channel, e.g. `'telegrambot'` (its `connectorId`). */
  connectorId?: string;
  /** This chat, rather than the item's newest active one (not replaced if it ended). */
  chatId?: number | string;
  /** The sender, rather than the webhook's own user or the current user of a token or frame. */
  userId?: number | string;
}

/** Where a message to a CRM item went, and as whom. */
export interface SentToCrmItem {
  /** The new message's id. */
  id: number;
  /** The chat it went to. */
  chatId: number;
  /** That chat's channel (`null` when the caller named the chat). */
  connectorId: string | null;
  /** The channel's title, when the chat was chosen here. */
  connectorTitle?: string;
  /** The sender. */
  userId: number;
  /** Whether this call added the sender to the chat. */
  joined: boolean;
  /** Present, `true`, when reading the chat back established the id (`verify`). */
  verified?: true;
  /** With `leave`, after joining: whether the sender was removed from the chat again. */
  left?: boolean;
  /** Why the sender could not be removed (the message was sent all the same). */
  leaveError?: Bitrix24Error;
}

/** One item's outcome in `sendToCrmItems`: where its message went, or why not. */
export type SentToCrmItemEntry =
  | ({ ok: true } & Omit<SentToCrmItem, 'left' | 'leaveError'>)
  | { ok: false; error: Bitrix24Error };

/** Options of `sendToCrmItems`: those of `crmMessageAddMany`, plus `join`. */
export interface SendToCrmItemsOptions extends MessageAddManyOptions {
  /** Add each sender to its chat before sending (one command per sender and chat;
   * default `true`). With `false`, a sender that is not a member fails with `NOT_A_MEMBER`. */
  join?: boolean;
}

/** Options of `sendToCrmItem`. */
export interface SendToCrmItemOptions extends MessageOptions {
  /** Add the sender to the chat when the portal says it is not a member, then send
   * (default `true`). With `false`, such a send fails with `NOT_A_MEMBER`. */
  join?: boolean;
  /** Remove a sender this call added once the message is sent (default `false`). */
  leave?: boolean;
}

/** Verified delivery of messages (see the README's "Delivery guarantees"). */
export interface VerifyOptions {
  /** Before sending, read the chat's last message id; when the outcome is unknown, read the
   * chat back to find the message, and send once more only after it showed the message was
   * not stored. Needs the `im` scope. */
  verify?: boolean;
  /** How long to wait after a first read did not find the message, for a request that may
   * still be running on the portal, before reading again (default: the call's timeout). */
  settleMs?: number;
}

/** An `AbortSignal`, described by the members the client uses so that no DOM lib (nor
 * `@types/node`) is needed: a real `AbortSignal` from either fits. At run time it must be
 * one (from an `AbortController` or `AbortSignal.timeout()`); anything else rejects with
 * `ERROR_ARGUMENT`. */
export interface AbortSignalLike {
  /** Whether the signal has fired. */
  readonly aborted: boolean;
  /** Subscribes to the signal's `abort` event. */
  addEventListener(type: 'abort', listener: () => void): void;
  /** Unsubscribes from the signal's `abort` event. */
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** Options every call takes. */
export interface CallOptions {
  /** Cancels the call; it then rejects with code `ABORTED`. */
  signal?: AbortSignalLike;
  /** Milliseconds before the call rejects with code `TIMEOUT` (default: the client's, 30000).
   * Bounds the whole call: token refreshes and waits for BX24.js included. */
  timeoutMs?: number;
}

/** Options of a message send (`crmMessageAdd`, `sendToCrmItem`): those of every call, plus
 * verified delivery. Reads, `call`, `batch` and the list methods take no `verify`. */
/** A message the portal would cut. */
export interface TruncateOption {
  /** Send a text longer than the portal keeps (20,000 characters after its line-break codes
   * and trimming), accepting that it stores the first 20,000 and ` (...)`. Without it such a
   * text is refused with `MESSAGE_TOO_LONG` and nothing is sent. */
  truncate?: boolean;
}

/** Options of a message send: those of every call, verified delivery and `truncate`. */
export interface MessageOptions extends CallOptions, VerifyOptions, TruncateOption {}

/** What a refresh function may resolve to: the new access token, or an object holding it. */
export type RefreshResult =
  | string
  | {
      /** The new access token. */
      accessToken: string;
      /** When it expires, in seconds since the epoch (as the OAuth server answers). */
      expires?: number;
      /** How many seconds it is valid for. */
      expires_in?: number;
    }
  | {
      /** The new access token (the OAuth server's answer taken as it is). */
      access_token: string;
      /** When it expires, in seconds since the epoch. */
      expires?: number;
      /** How many seconds it is valid for. */
      expires_in?: number;
      /** The new refresh token (the old one stops working): saved in the store. */
      refresh_token?: string;
    }
  | {
      /** The OAuth server's refusal, e.g. `invalid_grant` (the app must be authorized
       * again) or `invalid_client` (check the client secret); quoted in the error. */
      error: string;
      error_description?: string;
    };

/** OAuth tokens as a token store holds them. */
export interface StoredTokens {
  /** The access token. */
  accessToken: string;
  /** The refresh token (single use: a refresh returns a new one). */
  refreshToken?: string;
  /** When the access token expires, in milliseconds since the epoch. */
  expiresAt?: number;
}

/** Where the current tokens live, shared by every client that uses the same store (other
 * processes or tabs included). On expiry a client reads it (another one may have refreshed
 * already), else refreshes under `lock`, reading it again once the lock is held, and saves
 * the new tokens with `set` before releasing the lock. */
export interface TokenStore {
  /** The stored tokens, or nothing. */
  get(): Promise<StoredTokens | null | undefined> | StoredTokens | null | undefined;
  /** Compare and set: writes `next` only if the store still holds `previous`; resolves to
   * whether it wrote. */
  set(next: StoredTokens, previous: StoredTokens | null): Promise<boolean> | boolean;
  /** Runs `fn` holding the lock `name`, shared by every user of the store; resolves to its result. */
  lock<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

/** Token auth: the portal and an OAuth access token. */
export interface TokenAuth {
  /** The portal host, e.g. `portal.bitrix24.com` (https is assumed). */
  domain?: string;
  /** The REST base from the OAuth answer, e.g. `https://portal.bitrix24.com/rest/`. */
  clientEndpoint?: string;
  /** The access token, sent as `auth` in the request body (with a `store`: read from it). */
  accessToken?: string;
  /** The refresh token that came with `accessToken` (without a store), passed to `refresh`. */
  refreshToken?: string;
  /** Where the tokens live, shared with other clients, processes or tabs (see `TokenStore`). */
  store?: TokenStore;
  /** Called once for all calls in flight when the portal says `expired_token` or
   * `invalid_token`, with the tokens to replace (as the store holds them); resolves to the
   * OAuth server's answer (or `{accessToken}`), which the client saves in the store. */
  refresh?: (current: StoredTokens | null) => RefreshResult | Promise<RefreshResult>;
}

/** An in-process token store (the tokens in memory). */
export declare function memoryTokenStore(initial?: StoredTokens): TokenStore;

/** A token store in Web Storage (`localStorage` by default) under `key`, locked with the
 * Web Locks API across the tabs of one origin. */
export declare function webStorageTokenStore(key: string, storage?: StorageLike): TokenStore;

/** The members of Web Storage (`localStorage`) a token store uses (no DOM lib needed). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** Options of `Client.fromWebhook` and `Client.fromToken`. */
export interface ClientOptions extends VerifyOptions {
  /** Default timeout of every call, in milliseconds (default 30000). */
  timeoutMs?: number;
  /** Timeout of one token refresh, in milliseconds (default 10000). */
  refreshTimeoutMs?: number;
  /** Allow a plain `http://` portal other than this machine (localhost, 127.0.0.0/8, [::1]).
   * Off by default: the webhook secret or token would travel in clear text. */
  allowInsecureHttp?: boolean;
  /** The portal's request-rate limit, which this client paces all its calls to (a batch
   * counts as one request): `'standard'` (the default: 50 requests, 2 per second),
   * `'enterprise'` (250, 5), your own numbers, or `false` for no pacing (when you run
   * your own queue). After a `QUERY_LIMIT_EXCEEDED` the bucket counts as full. */
  limits?: false | 'standard' | 'enterprise' | Limits;
  /** Retries of `QUERY_LIMIT_EXCEEDED` and `OPERATION_TIME_LIMIT`, which the portal answers
   * before running the method (default `{retries: 3, baseDelayMs: 250, maxDelayMs: 30000}`);
   * `false`: none. Nothing whose outcome is unknown is ever sent again. */
  retry?: false | RetryOptions;
  /** Called after every HTTP exchange, to see why a mass send is slow. Never given a
   * parameter value or a secret. What it throws or rejects with is ignored. */
  onRequest?: (event: RequestEvent) => void | Promise<void>;
}

/** A leaky bucket's size and drain rate. */
export interface Limits {
  /** Requests sent at once from an empty bucket (default 50). */
  burst?: number;
  /** Requests per second once it is full (default 2). */
  drainPerSecond?: number;
}

/** How limit refusals are retried. */
export interface RetryOptions {
  /** Retries after the first attempt (default 3). */
  retries?: number;
  /** First backoff in milliseconds, doubled per retry, half of it random (default 250). */
  baseDelayMs?: number;
  /** Longest single wait, a 429's reset included (default 30000). */
  maxDelayMs?: number;
}

/** One HTTP exchange, as `onRequest` gets it. */
export interface RequestEvent {
  /** The REST method (`batch` for a batch request). */
  method: string;
  /** The HTTP status, 0 when no answer was read. */
  status: number;
  /** The error code, when the exchange failed. */
  code?: string;
  /** From sending to the answer, in milliseconds. */
  durationMs: number;
  /** 1 for the call's first attempt, 2 for its first retry... */
  attempt: number;
  /** Milliseconds waited before sending: for the limiter and a retry's backoff. */
  waitedMs: number;
}

/** A command of `batch`: `[method, params]`. Parameter values may refer to an earlier
 * command of the same request of 50 with `$result[name][FIELD]...`. */
export type BatchCommand = [method: string, params?: Record<string, unknown>];

/** One command's outcome. */
export type BatchEntry =
  | { ok: true; result: unknown; total?: number; next?: number }
  | { ok: false; error: Bitrix24Error };

/** Options of `batch`. */
export interface BatchOptions extends CallOptions {
  /** Stop at the first failing command; later ones fail with `HALTED` (not executed). */
  halt?: boolean;
}

/** One message's outcome in `crmMessageAddMany`: its id, or an error whose `outcome`
 * says whether it was not executed (safe to send again), failed, or may have been
 * delivered (`unknown`: never sent again by the client). */
export type MessageEntry =
  | { ok: true; id: number; /** Present when reading the chat established the delivery (`verify`). */ verified?: true }
  | { ok: false; error: Bitrix24Error };

/** Counts after each batch of a mass send. */
export interface MassProgress {
  /** Items with a final state. */
  done: number;
  /** All items. */
  total: number;
  /** Delivered (the portal gave an id). */
  delivered: number;
  /** Surely not delivered: refused, invalid, or not executed. */
  failed: number;
  /** May have been delivered: the answer was lost. */
  unknown: number;
}

/** Options of `crmMessageAddMany`. With `verify`, each chat's last message id is read
 * first (in batches), and the messages of a batch whose answer was lost are looked for in
 * their chats, then sent again only once their absence is established. */
export interface MessageAddManyOptions extends VerifyOptions, TruncateOption {
  /** Called after each batch request. */
  onProgress?: (progress: MassProgress) => void;
  /** Stops before the next batch; the items not yet sent fail with `ABORTED`, not executed. */
  signal?: AbortSignalLike;
  /** Stop at the first failing message; the rest fail with `HALTED`, not executed. */
  halt?: boolean;
  /** Timeout of each batch request (its wait for the limiter included), in milliseconds. */
  timeoutMs?: number;
}

/** An item of a list method as `list` yields it unless told otherwise: list methods answer
 * with records (`{ID: '101', TITLE: '…'}`), whose fields are `unknown` until checked. */
export type ListItem = Record<string, unknown>;

/** One page of a list method. */
export interface Page<T = unknown> {
  /** The page's `result`. */
  result: T;
  /** How many items match (absent or 0 when counting is off, `start: -1`). */
  total?: number;
  /** The `start` of the next page; absent on the last. */
  next?: number;
}

/** What `BX24.getAuth()` returns; `expires_in` is the absolute expiry in milliseconds. */
export interface Bx24Auth {
  /** The current access token. */
  access_token: string;
  /** The refresh token (not used by the client). */
  refresh_token?: string;
  /** When the token expires, in milliseconds since the epoch. */
  expires_in: number;
  /** The portal host, e.g. `portal.bitrix24.com`. */
  domain: string;
  /** The portal's id (not used by the client). */
  member_id?: string;
}

/** The part of BX24.js the client uses. */
export interface Bx24Like {
  /** Calls `callback` once BX24.js is ready.
   * @param callback called without arguments */
  init(callback: () => void): void;
  /** The current auth, or `false` outside a portal frame. */
  getAuth(): Bx24Auth | false;
  /** Asks the portal for a new token.
   * @param callback receives the new auth, or `false` */
  refreshAuth(callback: (auth: Bx24Auth | false) => void): void;
}

/** Where a framed app is shown, from the portal's `PLACEMENT` and `PLACEMENT_OPTIONS`. */
export interface Placement {
  /** e.g. `CRM_DEAL_DETAIL_TAB`, or `DEFAULT` for the app's own page. */
  placement: string;
  /** e.g. `{ ID: '288' }` for a CRM card tab: the portal's `PLACEMENT_OPTIONS`, whose values
   * are strings (ids included). A plain dictionary: `options.ID` is a `string`, or
   * `string | undefined` under `noUncheckedIndexedAccess`, as for any index signature, since
   * which keys are present depends on the placement (`DEFAULT` has none). */
  options: Record<string, string>;
}

/** A client made by `Client.fromFrame()`: the same calls, and `placement` always set. */
export interface FrameClient extends Client {
  /** Where the app is shown. */
  readonly placement: Placement;
}

/** Options of `Client.fromBx24`. */
export interface Bx24ClientOptions extends ClientOptions {
  /** The portal's scheme when the page is not in a portal frame (inside one, the frame says; default `https`). */
  protocol?: 'https' | 'http';
  /** How long to wait for `BX24.init` (default 10000 ms). */
  initTimeoutMs?: number;
}

/** Options of the free `crmMessageAdd`: one form of auth, or a client, plus call options.
 * With none, a loaded `globalThis.BX24` is used. */
export type CrmMessageAddOptions = MessageOptions & (
  | ({
      /** An inbound webhook URL `https://{portal}/rest/{user}/{secret}/` (a secret: keep it on a server). */
      webhookUrl: string;
    } & ClientOptions)
  | (TokenAuth & ClientOptions)
  | {
      /** An existing client, whose auth and refresh are shared. */
      client: Client;
    }
  | ({
      /** A loaded `BX24` object (default: `globalThis.BX24`). */
      bx24?: Bx24Like;
    } & Bx24ClientOptions)
);

/** Stable error codes: the portal's as sent, and the client's own. */
export type Bitrix24ErrorCode =
  | 'ERROR_ARGUMENT' | 'ACCESS_DENIED' | 'CHAT_NOT_IN_CRM' | 'MESSAGE_ADD_ERROR' | 'CANCELED'
  | 'CRM_CHAT_EMPTY_CRM_DATA' | 'CRM_CHAT_EMPTY_USER' | 'CRM_CHAT_USER_NOT_ACTIVE' | 'WRONG_REQUEST'
  | 'expired_token' | 'invalid_token' | 'NO_AUTH_FOUND' | 'INVALID_CREDENTIALS' | 'insufficient_scope'
  | 'QUERY_LIMIT_EXCEEDED' | 'OPERATION_TIME_LIMIT' | 'ERROR_METHOD_NOT_FOUND' | 'INTERNAL_SERVER_ERROR'
  | 'NETWORK_ERROR' | 'TIMEOUT' | 'ABORTED' | 'BAD_RESPONSE' | 'NO_AUTH' | 'LOAD_ERROR' | 'INTERNAL_ERROR' | 'COMMAND_DENIED'
  | 'HALTED' | 'ERROR_BATCH_LENGTH_EXCEEDED' | 'ERROR_BATCH_METHOD_NOT_ALLOWED'
  | 'NO_CHAT' | 'NO_ACTIVE_CHAT' | 'NO_CHAT_ON_CONNECTOR' | 'NOT_A_MEMBER' | 'CANNOT_JOIN' | 'MESSAGE_TOO_LONG'
  | (string & {});

/** What the caller can do about an error. */
export type Bitrix24ErrorKind =
  | 'invalidArgument' | 'auth' | 'rateLimited' | 'rejected' | 'serverError' | 'network' | 'timeout'
  | 'aborted' | 'badResponse';

/** Whether the portal executed the call:
 * - `notExecuted`: nothing ran (never sent, or refused before the method ran: limits, auth,
 *   validation); sending it again cannot duplicate anything;
 * - `failed`: the method ran and refused (e.g. `CHAT_NOT_IN_CRM`); nothing was stored;
 * - `unknown`: no reliable answer after the request left (timeout, dropped connection, 5xx,
 *   a body that is not the portal's): a message may have been delivered. */
export type Bitrix24ErrorOutcome = 'notExecuted' | 'failed' | 'unknown';

/** Every rejection of this package is a `Bitrix24Error`. */
export declare class Bitrix24Error extends Error {
  private constructor();
  readonly name: 'Bitrix24Error';
  /** The portal's code as sent (case kept), or one of the client's own. */
  readonly code: Bitrix24ErrorCode;
  /** What the caller can do about it. */
  readonly kind: Bitrix24ErrorKind;
  /** HTTP status of the answer, or 0 when none was read. */
  readonly status: number;
  /** The REST method called. */
  readonly method: string;
  /** The portal's `error_description`, or the client's text. */
  readonly description: string;
  /** The parameter named by the portal or by validation (wire spelling, e.g. `CRM_ENTITY`). */
  readonly argument?: string;
  /** What to do about it, when the client knows (set on some errors). */
  readonly hint?: string;
  /** Whether the portal executed the call. */
  readonly outcome: Bitrix24ErrorOutcome;
  /** True when repeating the same call cannot deliver a message twice and may succeed. */
  readonly retryable: boolean;
  /** Present (true) when the outcome was established by reading the chat back (`verify`). */
  readonly verified?: true;
  /** With `verify`, on an `unknown` outcome: the ids of messages by the same sender in the
   * chat that this client cannot account for (the operator typing in the messenger, another
   * app, a text changed beyond recognition). Any of them may be this message, so it was not
   * sent again: look at them to decide. */
  readonly candidates?: readonly number[];
}

/** A Bitrix24 portal client: holds the auth (and refreshes a token once for all calls in
 * flight) and the default timeout. The WebAssembly module loads on its first call. */
export declare class Client {
  /** Use `Client.fromWebhook`, `fromToken`, `fromBx24` or `fromFrame`. */
  private constructor();
  /** A client for an inbound webhook URL `https://{portal}/rest/{user}/{secret}/`.
   * The URL is a secret: it never appears in errors. A bad URL rejects the first call
   * (or `ready()`), as does a missing one (`NO_AUTH`): `undefined` is taken, so that
   * `Client.fromWebhook(process.env.B24_WEBHOOK_URL)` needs no check of its own.
   * @param url the webhook URL
   * @param options default timeout and other client options */
  static fromWebhook(url: string | undefined, options?: ClientOptions): Client;
  /** A client for an OAuth access token; with `refresh`, an expired token is refreshed
   * once for all calls in flight and each of them is sent again once.
   * @param auth the portal (`domain` or `clientEndpoint`), the token and an optional refresh function
   * @param options default timeout and other client options */
  static fromToken(auth: TokenAuth, options?: ClientOptions): Client;
  /** A client for an app inside a Bitrix24 iframe with BX24.js loaded: waits for
   * `BX24.init`, takes the token from `BX24.getAuth()` before every call, and on expiry
   * calls `BX24.refreshAuth` once for all calls in flight.
   * @param bx24 the loaded `BX24` object
   * @param options timeouts and the scheme outside a frame */
  static fromBx24(bx24: Bx24Like, options?: Bx24ClientOptions): Promise<Client>;
  /** A client for an app inside a Bitrix24 iframe, without BX24.js: speaks the
   * parent-window protocol itself, accepting answers only from the portal's origin.
   * Resolves to a `FrameClient`, whose `placement` is always set.
   * @param options timeouts */
  static fromFrame(options?: ClientOptions): Promise<FrameClient>;
  /** Loads the module and creates the client now, so that bad options reject here. */
  ready(): Promise<this>;
  /** Where a frame client's app is shown, or `undefined` for other clients. */
  readonly placement: Placement | undefined;
  /** The portal's origin, e.g. `https://portal.bitrix24.com` (never the secret); known once
   * the client is ready (after its first call or `ready()`). */
  readonly portal: string | undefined;
  /** How many times this client has refreshed its access token. */
  readonly refreshes: number;
  /** Fits the iframe to the page's content height (the parent's `resizeWindow`). Frame clients only. */
  fitWindow(): Promise<{ width: number | string; height: number }>;
  /** Sets the title the portal shows above the app (the parent's `setTitle`). A portal
   * honours it only on the app's own page (placement `DEFAULT`); elsewhere this rejects at
   * once with `COMMAND_DENIED`. Frame clients only.
   * @param title the new title */
  setTitle(title: string): Promise<unknown>;
  /** `imopenlines.crm.message.add`: sends `message` from `userId` to the open-line chat
   * `chatId` of a CRM item; resolves to the new message id.
   * @param params the item, the sender, the chat and the text
   * @param options `signal`, `timeoutMs`, `verify` and `settleMs` */
  crmMessageAdd(params: CrmMessageAddParams, options?: MessageOptions): Promise<number>;
  /** `imopenlines.crm.chat.get`: the open-line chats of a CRM item.
   * @param params the item, and whether only active chats are wanted
   * @param options `signal` and `timeoutMs` */
  crmChatGet(params: CrmChatGetParams, options?: CallOptions): Promise<CrmChat[]>;
  /** `imopenlines.crm.chat.getLastId`: the id of the CRM item's last open-line chat,
   * whatever its state: it may be a finished or queued dialogue, or on a channel that was
   * disconnected, and then refuses messages (`CHAT_NOT_IN_CRM`). To send, use
   * `sendToCrmItem`, which picks an active chat.
   * @param params the item
   * @param options `signal` and `timeoutMs` */
  crmChatGetLastId(params: CrmEntityParams, options?: CallOptions): Promise<number>;
  /** `imopenlines.crm.chat.user.add`: adds a user to the item's chat; resolves to the
   * chat id (0 when no chat was given and none was found).
   * @param params the item, the user and optionally the chat
   * @param options `signal` and `timeoutMs` */
  crmChatUserAdd(params: CrmChatUserParams, options?: CallOptions): Promise<number>;
  /** `imopenlines.crm.chat.user.delete`: removes a user from the item's chat; resolves
   * to the chat id (0 when none was found).
   * @param params the item, the user and optionally the chat
   * @param options `signal` and `timeoutMs` */
  crmChatUserDelete(params: CrmChatUserParams, options?: CallOptions): Promise<number>;
  /** `imopenlines.crm.lead.create`: creates a lead from an open-line chat.
   * @param params the chat
   * @param options `signal` and `timeoutMs` */
  crmLeadCreate(params: CrmLeadCreateParams, options?: CallOptions): Promise<boolean>;
  /** Any other REST method; resolves to its `result` as the portal sent it, typed `T`
   * (`unknown` unless you say: nothing is checked at run time). Methods that are not reads
   * are never repeated after a lost answer.
   * @param method the REST method, e.g. `crm.lead.list`
   * @param params its parameters, a plain object of JSON values
   * @param options `signal` and `timeoutMs` */
  call<T = unknown>(method: string, params?: Record<string, unknown>, options?: CallOptions): Promise<T>;
  /** One page of a list method, with the portal's `total` and `next`. `T` is the page's
   * `result`, as for `call` (default: a list of records; `list<T>` reads pages of `T[]`).
   * @param method e.g. `crm.lead.list`
   * @param params its parameters; `start` picks the page */
  callPage<T = ListItem[]>(method: string, params?: Record<string, unknown>, options?: CallOptions): Promise<Page<T>>;
  /** Every item of a list method, page after page by `next` (50 per page, one request
   * each, paced by the limiter). A page's items are its `result` when that is a list,
   * or the one list inside it (`{tasks: [...]}`). `T` is one item (default: a record,
   * `ListItem`). */
  list<T = ListItem>(method: string, params?: Record<string, unknown>, options?: CallOptions): AsyncGenerator<T, void, undefined>;
  /** Many commands in `batch` requests of up to 50 (one limiter place each). Resolves
   * to one entry per command, keyed like `commands` (the names of a keyed batch are kept
   * in its result's type); rejects only for invalid input.
   * @param commands `{name: [method, params]}` or `[[method, params], ...]` */
  batch(commands: readonly BatchCommand[], options?: BatchOptions): Promise<BatchEntry[]>;
  batch<K extends string>(commands: Record<K, BatchCommand>, options?: BatchOptions): Promise<Record<K, BatchEntry>>;
  /** Sends any number of messages through batches of up to 50 under the limiter.
   * Resolves (never rejects for per-item failures) to one entry per item, in order.
   * Invalid items are not sent. Items built with `map` need no `as const` (see
   * `CrmEntityTypeOf`). */
  crmMessageAddMany<E extends string>(items: readonly CrmMessageAddItem<E>[], options?: MessageAddManyOptions): Promise<MessageEntry[]>;
  /** Sends a message to a CRM item's customer: finds the sender (`userId`, else the
   * webhook's own user, else the current user), the item's newest active open-line chat
   * (of `connectorId` when given), adds the sender to it when the portal says it is not a
   * member (`join`), and sends. When nothing can be sent it rejects with `NO_CHAT`,
   * `NO_ACTIVE_CHAT`, `NO_CHAT_ON_CONNECTOR`, `NOT_A_MEMBER` or `CANNOT_JOIN`
   * (outcome `notExecuted`), naming the item.
   * @param params the item and the text; optionally the channel, chat and sender
   * @param options `join`, `leave`, `verify`, `settleMs`, `signal` and `timeoutMs` */
  sendToCrmItem(params: SendToCrmItemParams, options?: SendToCrmItemOptions): Promise<SentToCrmItem>;
  /** `sendToCrmItem` for many items: the items' chats read in batches (one command per
   * distinct CRM item), senders added in batches, messages sent in batches of 50 under the
   * limiter. Resolves (never rejects for per-item failures) to one entry per item, in order.
   * @param items each a CRM item and a text, optionally a channel, chat and sender
   * @param options `join`, `halt`, `verify`, `settleMs`, `onProgress`, `signal` and `timeoutMs` */
  sendToCrmItems<E extends string>(items: readonly SendToCrmItemsItem<E>[], options?: SendToCrmItemsOptions): Promise<SentToCrmItemEntry[]>;
  /** Releases the client's memory; later calls reject with `NO_AUTH`. */
  free(): void;
}

/** Sends a message into the open-line chat of a CRM item (`imopenlines.crm.message.add`)
 * and resolves to the new message id.
 * @param params the item, the sender, the chat and the text
 * @param options one form of auth (`webhookUrl`; `accessToken` with `domain` or
 *   `clientEndpoint`; a `client`; or `bx24`/a loaded `globalThis.BX24`), plus `signal` and `timeoutMs` */
export declare function crmMessageAdd(params: CrmMessageAddParams, options?: CrmMessageAddOptions): Promise<number>;

/** `client.sendToCrmItem` with its auth in the options, as the free `crmMessageAdd` takes it.
 * @param params the item and the text; optionally the channel, chat and sender
 * @param options one form of auth, plus `join`, `leave`, `verify`, `signal` and `timeoutMs` */
export declare function sendToCrmItem(params: SendToCrmItemParams, options?: CrmMessageAddOptions & SendToCrmItemOptions): Promise<SentToCrmItem>;

/** True for the errors this package rejects with (a TypeScript type guard); never throws.
 * @param value anything caught */
export declare function isBitrix24Error(value: unknown): value is Bitrix24Error;

/** Loads the WebAssembly module now (it otherwise loads on the first call), so that a
 * missing or blocked `.wasm` fails here. Rejects with code `LOAD_ERROR`. */
export declare function init(): Promise<void>;
