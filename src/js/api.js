// The package's public face, shared by every entry (browser, Node ESM, CommonJS):
// `Client`, `crmMessageAdd`, `sendToCrmItem`, `Bitrix24Error`, `isBitrix24Error`, `init`.
//
// The WebAssembly module is loaded on the first call (or by `init()`), never at import
// time: no top-level await, and synchronous constructors such as `Client.fromWebhook`
// return at once, creating their wasm object on first use. Every function here
// returns a Promise that rejects with a `Bitrix24Error`; none throws on any input.
// Entries call `makeApi(load)` with a `load` that instantiates the module and
// resolves to its exports.

export function makeApi(load) {
  /** Typed methods, generated on `Client.prototype`; checked against the wasm table. */
  const METHODS = ['crmMessageAdd', 'crmChatGet', 'crmChatGetLastId', 'crmChatUserAdd', 'crmChatUserDelete', 'crmLeadCreate'];

  /** The brand of every copy of the package's errors (its ESM and CommonJS entries
   * each have their own class). */
  const branded = (value) => value instanceof Error && value.name === 'Bitrix24Error' && typeof value.code === 'string';

  class Bitrix24Error extends Error {
    /** `instanceof` holds for an error of any copy of the package. */
    static [Symbol.hasInstance](value) {
      try {
        return branded(value);
      } catch {
        return false;
      }
    }

    constructor(fields) {
      super(fields.message);
      // Own properties, so that JSON.stringify(error) shows them (and never a secret).
      Object.defineProperty(this, 'name', { value: 'Bitrix24Error', enumerable: true, writable: true, configurable: true });
      this.code = fields.code;
      this.kind = fields.kind;
      this.status = fields.status;
      this.method = fields.method;
      this.description = fields.description;
      if (fields.argument !== undefined) this.argument = fields.argument;
      this.outcome = fields.outcome;
      this.retryable = fields.retryable;
      if (fields.verified) this.verified = true;
      if (fields.candidates) this.candidates = fields.candidates;
      if (fields.hint) this.hint = fields.hint;
    }
  }

  /** An error raised here, before anything reached the module: nothing was sent. */
  const local = (code, kind, method, description, argument) => new Bitrix24Error({
    message: `${method}: ${code}: ${description}`, code, kind, status: 0, method, description, argument,
    outcome: 'notExecuted', retryable: false,
  });

  /** Turns what the module rejected with (an error record) into a `Bitrix24Error`. */
  const toError = (r) => {
    if (r instanceof Bitrix24Error) return r;
    if (r !== null && typeof r === 'object' && typeof r.code === 'string' && typeof r.outcome === 'string') return new Bitrix24Error(r);
    // Not expected: the module rejects only with records. Say so without guessing.
    return new Bitrix24Error({
      message: `INTERNAL_ERROR: ${String(r?.message ?? 'unexpected failure')}`, code: 'INTERNAL_ERROR', kind: 'badResponse',
      status: 0, method: '', description: 'unexpected failure inside the client', outcome: 'unknown', retryable: false,
    });
  };
  const fail = (r) => { throw toError(r); };

  /** A message to a CRM item's result: a failure to leave the chat becomes a `Bitrix24Error`. */
  const delivered = (out) => {
    if (out?.leaveError) out.leaveError = toError(out.leaveError);
    return out;
  };

  /** Per-item entries from the module: their error records become `Bitrix24Error`s. */
  const entries = (out) => {
    for (const e of Array.isArray(out) ? out : Object.values(out)) {
      if (e && e.ok === false) e.error = toError(e.error);
    }
    return out;
  };

  let glue;
  let loading;
  /** The module's exports, loading it once (again after a failed load). */
  const ready = () => {
    if (glue) return Promise.resolve(glue);
    loading ??= Promise.resolve().then(load).then((m) => {
      const names = m.methods().split(',');
      if (names.join() !== METHODS.join()) throw new Error(`method tables differ: ${names}`);
      return (glue = m);
    }, (e) => {
      loading = undefined;
      throw local('LOAD_ERROR', 'network', 'init', `the WebAssembly module could not be loaded (${textOf(e)})`);
    });
    return loading;
  };

  /** Per-client state, keyed by the public object: { make, wasm, pending, freed }. */
  const clients = new WeakMap();
  const BUILD = Symbol('build');

  const notAClient = (method) => local('NO_AUTH', 'auth', method,
    'not a client: create one with Client.fromWebhook, Client.fromToken, Client.fromBx24 or Client.fromFrame');

  /** The driver behind `self`, its wasm client created on first use. */
  const wasmOf = (self, method) => {
    const st = clients.get(self);
    if (!st) return Promise.reject(notAClient(method));
    if (st.freed) return Promise.reject(local('NO_AUTH', 'auth', method, 'this client was freed'));
    if (st.wasm) return Promise.resolve(st.wasm);
    st.pending ??= ready().then((m) => {
      if (st.freed) throw local('NO_AUTH', 'auth', method, 'this client was freed');
      return (st.wasm = st.make(m));
    });
    return st.pending;
  };

  /** Ends one call of client state `st`: a client freed meanwhile is released now. */
  const done = (st) => {
    if (--st.busy === 0 && st.freed && st.wasm) {
      release(st.wasm);
      st.wasm = undefined;
    }
  };

  /** Runs `f(driver)`; every failure, synchronous or not, is a rejection. While a
   * call runs, `free()` waits for it. */
  const run = (self, method, f) => {
    try {
      const st = clients.get(self);
      const call = (wasm) => {
        st.busy++;
        let p;
        try {
          p = Promise.resolve(f(wasm));
        } catch (e) {
          done(st);
          throw e;
        }
        return p.then((v) => { done(st); return v; }, (e) => { done(st); return fail(e); });
      };
      // A ready client calls straight through.
      if (st?.wasm && !st.freed) return call(st.wasm);
      return wasmOf(self, method).then(call).then(undefined, fail);
    } catch (e) {
      return Promise.reject(toError(e));
    }
  };

  // ---------------------------------------------------------------------------------
  // The driver: performs what a client's machine in the module asks (requests, the one
  // wake timer, the caller's signals, the token sources, the hooks) and decides
  // nothing. The module calls nothing in JS: every step is one call into it that takes an
  // input with the time and returns the actions, as records (see src/abi.rs).
  // ---------------------------------------------------------------------------------

  const RS = '\x1e';
  const US = '\x1f';

  /** One clock for the machine: milliseconds since the epoch that never go back. */
  const now = () => performance.timeOrigin + performance.now();

  /** A form body, as BX24.js sends it: a CORS simple request (no preflight). */
  const HEADERS = { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' };

  /** What a thrown value says, as the module words its causes: `name: message`
   * (with Node's `cause` appended), a string as it is. */
  const causeText = (e) => {
    if (typeof e === 'string') return e;
    const str = (v, k) => {
      try {
        const s = v !== null && (typeof v === 'object' || typeof v === 'function') ? v[k] : undefined;
        return typeof s === 'string' ? s : undefined;
      } catch {
        return undefined;
      }
    };
    const name = str(e, 'name');
    const message = str(e, 'message');
    if (name !== undefined && message) {
      let cause;
      try {
        cause = str(e.cause, 'message');
      } catch {
        cause = undefined;
      }
      return cause === undefined ? `${name}: ${message}` : `${name}: ${message}: ${cause}`;
    }
    return name ?? 'unknown error';
  };

  /** A client's driver over its wasm `core`; `source` says where new tokens come from
   * (`{kind: 'refresh', refresh}`, `{kind: 'frame', send}`, `{kind: 'bx24', bx24}`). */
  const driver = (core, source, onRequest) => ({ core, source, onRequest, ops: new Map(), reqs: new Map(), cancelled: new Set(), unsent: new Set(), locks: new Map(), timer: undefined, wakeAt: undefined, freed: false });

  /** Frees a driver's wasm client and its timer. */
  const release = (d) => {
    for (const unlock of d.locks.values()) unlock();
    d.locks.clear();
    if (d.timer !== undefined) clearTimeout(d.timer);
    d.timer = undefined;
    d.freed = true;
    d.core.free();
  };

  /** BX24.js's current token as JSON (`''` when it has none). */
  const bx24Auth = (bx24) => {
    try {
      const a = bx24.getAuth();
      if (a === null || typeof a !== 'object') return '';
      return JSON.stringify({ access_token: a.access_token, expires_in: a.expires_in, domain: a.domain }) ?? '';
    } catch {
      return '';
    }
  };

  /** A token source's value as JSON: a string, or the fields the module reads. */
  const tokenJson = (value, keys) => {
    try {
      if (typeof value === 'string') return JSON.stringify(value);
      if (value === null || typeof value !== 'object') return 'null';
      const picked = {};
      for (const k of keys) {
        const v = value[k];
        if (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) picked[k] = v;
      }
      return JSON.stringify(picked);
    } catch {
      return 'null';
    }
  };

  /** Feeds one input to the machine (`f(core)` returns its records) and carries them out. */
  const step = (d, f) => {
    // A freed client's late answers (requests it cancelled, a slow token source) are
    // dropped here: nothing calls into a freed module object.
    if (d.freed) return;
    if (d.source?.kind === 'bx24') d.core.current(bx24Auth(d.source.bx24));
    let out;
    try {
      out = f(d.core);
    } catch (e) {
      // Not expected: the module cannot throw. End every call rather than hang it.
      const ops = [...d.ops.values()];
      d.ops.clear();
      for (const op of ops) op.end(false, null, toError(e));
      return;
    }
    apply(d, out);
  };

  /** Carries out a step's records in order; hooks and settled Promises run after the
   * drain, and the wake timer is armed before them (a hook may start another call). */
  const apply = (d, out) => {
    const later = [];
    const sends = [];
    let wake;
    for (const rec of out ? out.split(RS) : []) {
      const f = rec.split(US);
      switch (f[0]) {
        case 'S':
          sends.push(f);
          d.unsent.add(+f[1]);
          break;
        case 'C': {
          const req = +f[1];
          const controller = d.reqs.get(req);
          if (controller) controller.abort();
          else d.cancelled.add(req); // not sent yet: it never will be
          break;
        }
        case 'T': later.push(() => askToken(d, +f[1], f[2])); break;
        case 'G':
        case 'L':
        case 'V':
        case 'U': later.push(() => storeOp(d, f)); break;
        case 'R': if (d.onRequest) later.push(() => d.onRequest(JSON.parse(f[1]))); break;
        case 'P': {
          const op = d.ops.get(+f[1]);
          if (op?.onProgress) later.push(() => op.onProgress(JSON.parse(f[2])));
          break;
        }
        case 'D':
        case 'E': {
          const id = +f[1];
          const op = d.ops.get(id);
          if (op) {
            d.ops.delete(id);
            later.push(() => op.end(f[0] === 'D', f[2]));
          }
          break;
        }
        case 'W': wake = +f[1]; break;
        default: break;
      }
    }
    arm(d, wake);
    for (const g of later) g();
    // Requests go out after the hooks: one that a hook's abort cancelled never leaves.
    for (const f of sends) send(d, +f[1], f[2], f[3]);
  };

  /** Arms the one wake timer for `at` (none: cleared). Timers may fire early: the delay
   * is rounded up and one more millisecond added; the machine compares times anyway. */
  const arm = (d, at) => {
    if (at === d.wakeAt && (at === undefined || d.timer !== undefined)) return;
    if (d.timer !== undefined) clearTimeout(d.timer);
    d.timer = undefined;
    d.wakeAt = at;
    if (at === undefined) return;
    d.timer = setTimeout(() => {
      d.timer = undefined;
      d.wakeAt = undefined;
      step(d, (c) => c.tick(now()));
    }, Math.max(0, Math.ceil(at - now())) + 1);
  };

  /** The one place requests are made: POSTs a request the machine asked for and hands
   * the whole answer, or why there was none, back to it. */
  const send = (d, req, url, body) => {
    d.unsent.delete(req);
    if (d.freed) return;
    if (d.cancelled.delete(req)) {
      step(d, (c) => c.failure(req, true, false, 'cancelled before it was sent', now()));
      return;
    }
    const controller = new AbortController();
    d.reqs.set(req, controller);
    let sent = false;
    let pending;
    try {
      pending = fetch(url, { method: 'POST', headers: HEADERS, body, signal: controller.signal });
      sent = true;
    } catch (e) {
      pending = Promise.reject(e);
    }
    Promise.resolve(pending).then((res) => res.text().then((text) => {
      let type = '';
      try {
        type = res.headers.get('content-type') ?? '';
      } catch {
        // no readable headers: judged by the body alone
      }
      return [typeof res.status === 'number' ? res.status : 0, String(text), String(type)];
    })).then(([status, text, type]) => {
      d.reqs.delete(req);
      step(d, (c) => c.response(req, status, text, type, now()));
    }, (e) => {
      d.reqs.delete(req);
      step(d, (c) => c.failure(req, controller.signal.aborted, sent, causeText(e), now()));
    });
  };

  /** Carries out a token store operation (see src/abi.rs: `G`et, `L`ock, `V` set,
   * `U`nlock) and hands its answer back. A lock is held by keeping the `fn` given to
   * `store.lock` pending until the machine says `U`. */
  const storeOp = (d, f) => {
    const ask = +f[1];
    const store = d.source?.store;
    const answer = (how, text) => step(d, (c) => c.store_answer(ask, how, text, now()));
    // What a store threw, by its name and code only: its message may quote the tokens.
    const failed = (what) => (e) => {
      let code;
      try {
        code = typeof e?.code === 'string' ? ` ${e.code}` : '';
      } catch {
        code = '';
      }
      let name;
      try {
        name = typeof e?.name === 'string' ? e.name : typeof e;
      } catch {
        name = 'an error';
      }
      answer(3, `${what} threw ${name}${code}`);
    };
    const call = (name, ...args) => {
      try {
        return Promise.resolve(store[name](...args));
      } catch (e) {
        return Promise.reject(e);
      }
    };
    switch (f[0]) {
      case 'G':
        call('get').then((v) => answer(0, tokenJson(v, ['accessToken', 'refreshToken', 'expiresAt'])), failed('get'));
        break;
      case 'L':
        call('lock', `b24-openlines refresh ${d.core.portal}`, () => new Promise((release) => {
          d.locks.set(ask, release);
          answer(1, '');
        })).then(undefined, (e) => {
          d.locks.delete(ask);
          failed('lock')(e);
        });
        break;
      case 'V':
        call('set', JSON.parse(f[2]), JSON.parse(f[3])).then((wrote) => answer(2, wrote === true ? '1' : '0'), failed('set'));
        break;
      default: {
        const release = d.locks.get(ask);
        d.locks.delete(ask);
        release?.();
      }
    }
  };

  /** Asks the client's token source for a new token and hands its answer back; a
   * refresh function receives the tokens it replaces (`current`, JSON). */
  const askToken = (d, ask, current) => {
    const answer = (how, text) => step(d, (c) => c.token_answer(ask, how, text, now()));
    const s = d.source;
    if (s?.kind === 'refresh') {
      let value;
      try {
        value = s.refresh(JSON.parse(current || 'null'));
      } catch (e) {
        answer(1, causeText(e));
        return;
      }
      Promise.resolve(value).then((v) => answer(0, tokenJson(v, ['accessToken', 'access_token', 'refreshToken', 'refresh_token',
        'expires', 'expires_in', 'expiresAt', 'error', 'error_description'])),
        (e) => answer(2, causeText(e)));
    } else if (s?.kind === 'frame') {
      s.send('refreshAuth', '').then((v) => answer(0, tokenJson(v, ['AUTH_ID', 'AUTH_EXPIRES'])), (e) => answer(2, causeText(e)));
    } else if (s?.kind === 'bx24') {
      let f;
      try {
        f = s.bx24.refreshAuth;
      } catch {
        f = undefined;
      }
      if (typeof f !== 'function') {
        answer(2, 'BX24.refreshAuth is not a function');
        return;
      }
      try {
        f.call(s.bx24, () => answer(0, bx24Auth(s.bx24) || 'null'));
      } catch (e) {
        answer(2, `BX24.refreshAuth threw: ${causeText(e)}`);
      }
    }
  };

  /** Options the module reads, and the keys it reads inside `limits` and `retry`. */
  const OPTION_KEYS = ['signal', 'timeoutMs', 'verify', 'settleMs', 'halt', 'join', 'leave', 'truncate', 'onProgress', 'onRequest', 'webhookUrl', 'store', 'refreshToken',
    'accessToken', 'domain', 'clientEndpoint', 'refresh', 'client', 'bx24', 'allowInsecureHttp', 'refreshTimeoutMs',
    'limits', 'retry', 'initTimeoutMs', 'protocol'];
  const NESTED = { limits: ['burst', 'drainPerSecond'], retry: ['retries', 'baseDelayMs', 'maxDelayMs'] };
  const noop = () => {};

  /** A caller's options as the module reads them (see src/options.rs): each known key
   * read once, what JSON cannot hold as a marker. Also the caller's `AbortSignal`. */
  const snapshot = (options) => {
    if (options === undefined || options === null) return { text: 'null', values: {} };
    if (typeof options !== 'object') return { text: '{"$":"scalar"}', values: {} };
    let signal;
    const value = (v, key) => {
      switch (typeof v) {
        case 'boolean':
        case 'string':
          return v;
        case 'number':
          return Number.isFinite(v) ? v : { $: 'other' };
        case 'function':
          return { $: 'fn' };
        case 'object': {
          if (v === null) return undefined;
          if (key === 'signal') {
            let brand = false;
            try {
              brand = typeof AbortSignal === 'function' && v instanceof AbortSignal;
            } catch {
              brand = false;
            }
            if (!brand) return { $: 'object' };
            try {
              const aborted = v.aborted === true;
              v.addEventListener('abort', noop);
              v.removeEventListener('abort', noop);
              signal = v;
              return { $: 'signal', aborted };
            } catch (e) {
              return { $: 'badSignal', text: causeText(e) };
            }
          }
          const keys = NESTED[key];
          if (keys) {
            const o = {};
            for (const k of keys) {
              const r = read(v, k);
              if (r !== undefined) o[k] = r;
            }
            return o;
          }
          return { $: 'object' };
        }
        case 'undefined':
          return undefined;
        default:
          return { $: 'other' };
      }
    };
    const read = (o, key) => {
      try {
        return value(o[key], key);
      } catch (e) {
        return { $: 'threw', text: causeText(e) };
      }
    };
    const values = {};
    for (const k of OPTION_KEYS) {
      const v = read(options, k);
      if (v !== undefined) values[k] = v;
    }
    return { text: JSON.stringify(values), values, signal };
  };

  /** Starts a call on driver `d`: `kind` and `input` as `Core.call` takes them. Resolves
   * to the parsed result; rejects with a `Bitrix24Error`. */
  const start = (d, kind, name, input, options, onProgress) => new Promise((resolve, reject) => {
    const snap = snapshot(options);
    let op;
    let unlisten;
    const end = (ok, text, error) => {
      unlisten?.();
      if (error) reject(error);
      else if (ok) resolve(JSON.parse(text));
      else reject(toError(JSON.parse(text)));
    };
    if (snap.signal) {
      const signal = snap.signal;
      const onAbort = () => {
        if (op !== undefined && d.ops.has(op)) step(d, (c) => c.abort(op, now(), [...d.unsent].join()));
      };
      try {
        signal.addEventListener('abort', onAbort);
        unlisten = () => {
          try {
            signal.removeEventListener('abort', onAbort);
          } catch {
            // nothing to undo
          }
        };
      } catch {
        // checked by the snapshot: cannot fail here
      }
    }
    if (d.source?.kind === 'bx24') d.core.current(bx24Auth(d.source.bx24));
    const out = d.core.call(kind, name, input, snap.text, now());
    const cut = out.indexOf(RS);
    const first = (cut < 0 ? out : out.slice(0, cut)).split(US);
    if (first[0] !== 'O') {
      end(false, first[2]);
      return;
    }
    op = +first[1];
    d.ops.set(op, { onProgress, end });
    apply(d, cut < 0 ? '' : out.slice(cut + 1));
  });

  /** What `f` made of the module `m`; when it made nothing (`undefined`, or -1 for a
   * number), the module's error record for it, thrown as a `Bitrix24Error`. */
  const made = (m, f) => {
    const v = f();
    if (v === undefined || v === -1) throw toError(JSON.parse(m.lastError()));
    return v;
  };

  /** A caller's hook, read once and made quiet (`undefined` when none). */
  const hook = (options, name) => {
    try {
      const f = options?.[name];
      return typeof f === 'function' ? quiet(f) : undefined;
    } catch {
      return undefined;
    }
  };

  /** The page's `window.name` (a portal's frame names itself). */
  const frameName = () => {
    try {
      return typeof globalThis.name === 'string' ? globalThis.name : '';
    } catch {
      return '';
    }
  };

  /** Calls `BX24[name](callback)` and waits for the callback, at most `ms`; rejects
   * with the reason's text. */
  const bx24Call = (bx24, name, ms) => new Promise((resolve, reject) => {
    const what = `BX24.${name}`;
    let f;
    try {
      f = bx24[name];
    } catch {
      f = undefined;
    }
    if (typeof f !== 'function') {
      reject(`${what} is not a function`);
      return;
    }
    const timer = setTimeout(() => reject(`${what} did not call back within ${ms} ms`), ms);
    try {
      f.call(bx24, (v) => {
        clearTimeout(timer);
        resolve(v);
      });
    } catch (e) {
      clearTimeout(timer);
      reject(`${what} threw: ${causeText(e)}`);
    }
  });

  /** A driver over a loaded BX24.js, once `BX24.init` called back. */
  const bx24Driver = async (m, bx24, options, method) => {
    const snap = snapshot(options);
    const initMs = made(m, () => m.bx24Options(snap.text, method));
    if (bx24 === null || typeof bx24 !== 'object') throw local('NO_AUTH', 'auth', method, 'BX24 is not loaded');
    try {
      await bx24Call(bx24, 'init', initMs);
    } catch (e) {
      throw local('NO_AUTH', 'auth', method, causeText(e));
    }
    const core = made(m, () => m.Core.bx24(bx24Auth(bx24), frameName(), snap.text, method));
    return driver(core, { kind: 'bx24', bx24 }, hook(options, 'onRequest'));
  };

  /** The brands of boxed primitives, which JSON would unbox. */
  const BOXED = ['[object String]', '[object Number]', '[object Boolean]'];
  const brand = Object.prototype.toString;

  /** How typed params become JSON: a value that JSON would change or drop (a Date, a
   * boxed string, number or boolean, NaN, a function, a symbol, a BigInt) becomes `{}`,
   * which no field accepts, so the module's error names that field rather than sending
   * its JSON. */
  function strict(key, value) {
    const t = typeof value;
    if (t === 'function' || t === 'symbol' || t === 'bigint' || (t === 'number' && !Number.isFinite(value))) return {};
    if (t === 'object' && value !== null && key !== '' && BOXED.includes(brand.call(value))) return {};
    if (t !== 'object' && key !== '') {
      const given = this[key];
      if (given !== null && typeof given === 'object') return {};
    }
    return value;
  }

  /** Typed params as tagged text for the module (see src/abi.rs): `j` and their JSON
   * text, `u` when JSON has none (no params, a function), or `e` and what serializing
   * them threw (a throwing getter, a revoked proxy, a cycle), which the module reports. */
  const typedText = (params) => {
    try {
      const text = JSON.stringify(params, strict);
      return text === undefined ? 'u' : `j${text}`;
    } catch (e) {
      return `e${causeText(e ?? new Error('params could not be serialized'))}`;
    }
  };

  /** A mass send's items as tagged text: `j` and the JSON list of each item's
   * `typedText`, or `t` when `items` is not a readable list (the module reports it). */
  const itemTexts = (items) => {
    try {
      if (!Array.isArray(items)) return 't';
      const texts = new Array(items.length);
      for (let i = 0; i < texts.length; i++) {
        let item;
        try {
          item = items[i];
        } catch (e) {
          texts[i] = `e${causeText(e ?? new Error('the item could not be read'))}`;
          continue;
        }
        texts[i] = typedText(item);
      }
      return `j${JSON.stringify(texts)}`;
    } catch {
      return 't';
    }
  };

  /** `call()` params as tagged text: `j` and their JSON text (`toJSON` honoured,
   * `undefined` members and functions left out, as a JSON body would have them), `u`
   * for none, `t` when they are not a plain object, or `e` and what serializing threw. */
  const callText = (params) => {
    if (params === undefined || params === null) return 'u';
    try {
      if (typeof params !== 'object' || Array.isArray(params)) return 't';
      const text = JSON.stringify(params);
      return text === undefined ? 'enot serializable' : `j${text}`;
    } catch (e) {
      return `e${causeText(e ?? new Error('not serializable'))}`;
    }
  };

  /** `batch` commands as tagged text. */
  const commandsText = (commands) => {
    try {
      const text = JSON.stringify(commands);
      return text === undefined ? 'enot serializable' : `j${text}`;
    } catch (e) {
      return `e${causeText(e)}`;
    }
  };

  /** The channel to the parent window of a portal's app frame. `window.name` names the
   * portal and the app's session (the module reads it); commands go by `postMessage`
   * to the portal's origin only, answers are taken from that origin only and matched
   * by callback id, and every command waits at most `ms`. */
  const openFrame = (m, method, ms) => {
    const name = typeof globalThis.name === 'string' ? globalThis.name : '';
    const origin = m.frameOrigin(name);
    if (origin.startsWith('{')) throw toError(JSON.parse(origin));
    const parent = globalThis.parent;
    if (parent === undefined || parent === null) throw local('NO_AUTH', 'auth', method, 'there is no parent window');
    const waiting = new Map();
    const onMessage = (event) => {
      if (event?.origin !== origin || typeof event.data !== 'string') return;
      const reply = m.frameReply(event.data);
      const cut = reply.indexOf(US);
      const answer = cut > 0 && waiting.get(reply.slice(0, cut));
      if (!answer) return;
      let value = null;
      try {
        value = JSON.parse(reply.slice(cut + 1));
      } catch {
        // an answer without data
      }
      answer(value);
    };
    try {
      globalThis.addEventListener('message', onMessage);
    } catch (e) {
      throw local('NO_AUTH', 'auth', method, `this page cannot listen to its parent (${textOf(e)})`);
    }
    let n = 0;
    const send = (command, params) => new Promise((resolve, reject) => {
      const id = `b24${++n}x${Math.floor(Math.random() * 1e9)}`;
      const done = () => {
        clearTimeout(timer);
        waiting.delete(id);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`the portal did not answer ${command} within ${ms} ms`));
      }, ms);
      waiting.set(id, (value) => {
        done();
        resolve(value);
      });
      try {
        parent.postMessage(m.frameCommand(name, command, params, id), origin);
      } catch (e) {
        done();
        reject(e);
      }
    });
    return { name, send, close: () => globalThis.removeEventListener('message', onMessage) };
  };

  /** What a thrown value says, without trusting it to be an `Error`. */
  const textOf = (e) => {
    try {
      return typeof e?.message === 'string' ? e.message : String(e);
    } catch {
      return 'unknown error';
    }
  };

  /** Sends a frame command for `method`; rejects with `NO_AUTH` outside a frame client. */
  const frameCommand = (self, method, command, params) => {
    const st = clients.get(self);
    if (!st) return Promise.reject(notAClient(method));
    if (st.freed) return Promise.reject(local('NO_AUTH', 'auth', method, 'this client was freed'));
    if (!st.frame) {
      return Promise.reject(local('NO_AUTH', 'auth', method, 'only a client from Client.fromFrame talks to the parent window'));
    }
    return st.frame.send(command, params).then(undefined, (e) => {
      throw local('NO_AUTH', 'auth', method, textOf(e));
    });
  };

  /** A caller's hook, made safe to call from the module: what it throws or rejects
   * with is dropped (an async hook's rejection must not become an unhandled one). */
  const quiet = (f) => (event) => {
    try {
      const r = f(event);
      if (r !== null && typeof r === 'object' && typeof r.then === 'function') r.then(undefined, () => {});
    } catch {
      // the hook's own failure is not the call's
    }
  };

  /** The items of one page of a list method: the result itself when it is a list,
   * or the one list inside it (`{tasks: [...]}`, `{items: [...]}`). */
  const pageItems = (result) => {
    if (Array.isArray(result)) return result;
    if (result !== null && typeof result === 'object') {
      const lists = Object.values(result).filter(Array.isArray);
      if (lists.length === 1) return lists[0];
      return Object.values(result);
    }
    return [];
  };

  const wrap = (wasm) => {
    const c = new Client(BUILD);
    clients.get(c).wasm = wasm;
    return c;
  };

  /** A token client's source: the caller's refresh function, if any, and its token
   * store. */
  const refreshOf = (auth) => {
    try {
      const f = auth?.refresh;
      const store = auth?.store;
      return typeof f === 'function' ? { kind: 'refresh', refresh: (current) => f(current), store } : undefined;
    } catch {
      return undefined;
    }
  };

  class Client {
    /** Use `Client.fromWebhook`, `fromToken`, `fromBx24` or `fromFrame`. A client made
     * with `new Client()` rejects every call with `NO_AUTH`. */
    constructor(build, make) {
      if (build === BUILD) clients.set(this, { make, wasm: undefined, pending: undefined, freed: false, busy: 0, frame: undefined });
    }

    static fromWebhook(url, options) {
      return new Client(BUILD, (m) => driver(made(m, () => m.Core.webhook(typeof url === 'string' ? url : undefined,
        snapshot(options).text, 'Client.fromWebhook')), undefined, hook(options, 'onRequest')));
    }

    static fromToken(auth, options) {
      return new Client(BUILD, (m) => driver(made(m, () => m.Core.token(snapshot(auth).text, snapshot(options).text,
        'Client.fromToken')), refreshOf(auth), hook(options, 'onRequest')));
    }

    static fromBx24(bx24, options) {
      return ready().then((m) => bx24Driver(m, bx24, options, 'Client.fromBx24')).then(wrap, fail);
    }

    static fromFrame(options) {
      const method = 'Client.fromFrame';
      return ready().then(async (m) => {
        const snap = snapshot(options);
        const ms = made(m, () => m.frameTimeout(snap.text));
        const frame = openFrame(m, method, ms);
        try {
          let init;
          try {
            init = await frame.send('getInitData', '');
          } catch (e) {
            throw local('NO_AUTH', 'auth', method, textOf(e));
          }
          let initText = 'null';
          try {
            initText = JSON.stringify(init) ?? 'null';
          } catch {
            // unreadable: the module reports a missing AUTH_ID
          }
          const core = made(m, () => m.Core.frame(frame.name, initText, snap.text, now()));
          const client = wrap(driver(core, { kind: 'frame', send: frame.send }, hook(options, 'onRequest')));
          clients.get(client).frame = { ...frame, init };
          return client;
        } catch (e) {
          frame.close();
          throw e;
        }
      }).then(undefined, fail);
    }

    /** Loads the module and creates this client's wasm object now, so that a bad
     * webhook URL or token option rejects here rather than on the first call. */
    ready() {
      return run(this, 'Client.ready', () => this);
    }

    /** `{placement, options}` of a frame client (from the parent's `getInitData`). */
    get placement() {
      const init = clients.get(this)?.frame?.init;
      if (init === undefined) return undefined;
      let options = init.PLACEMENT_OPTIONS;
      if (typeof options === 'string') {
        try {
          options = JSON.parse(options);
        } catch {
          options = undefined;
        }
      }
      if (options === null || typeof options !== 'object' || Array.isArray(options)) options = {};
      return { placement: init.PLACEMENT ?? 'DEFAULT', options };
    }

    get portal() { return clients.get(this)?.wasm?.core.portal; }

    get refreshes() { return clients.get(this)?.wasm?.core.refreshes ?? 0; }

    /** Fits the iframe to the page's content height (the parent's `resizeWindow`). */
    fitWindow() {
      let height = 0;
      try {
        const h = globalThis.document?.documentElement?.scrollHeight;
        if (typeof h === 'number' && Number.isFinite(h) && h >= 0) height = Math.trunc(h);
      } catch {
        // no readable document: height 0, as the portal takes it
      }
      return frameCommand(this, 'fitWindow', 'resizeWindow', JSON.stringify({ width: '100%', height }));
    }

    /** Sets the title above the app (the parent's `setTitle`). A portal honours it only
     * on the app's own page (placement DEFAULT) and drops it silently elsewhere, so
     * elsewhere it is refused at once with `COMMAND_DENIED`. */
    setTitle(title) {
      const placement = clients.get(this)?.frame?.init?.PLACEMENT;
      if (typeof placement === 'string' && placement !== 'DEFAULT') {
        return Promise.reject(local('COMMAND_DENIED', 'rejected', 'setTitle',
          "the portal ignores setTitle outside the app's own page (placement DEFAULT)"));
      }
      if (typeof title !== 'string') {
        return Promise.reject(local('ERROR_ARGUMENT', 'invalidArgument', 'setTitle', 'title must be a string', 'title'));
      }
      return frameCommand(this, 'setTitle', 'setTitle', JSON.stringify({ title }));
    }

    call(method, params, options) { return run(this, 'call', (d) => start(d, 1, typeof method === 'string' ? method : '', callText(params), options)); }

    /** One page of a list method: `{result, total, next}`. */
    callPage(method, params, options) { return run(this, 'callPage', (d) => start(d, 2, typeof method === 'string' ? method : '', callText(params), options)); }

    /** Every item of a list method, page after page (by `next`). */
    async *list(method, params, options) {
      let start;
      for (;;) {
        const page = await this.callPage(method, start === undefined ? params : { ...params, start }, options);
        yield* pageItems(page.result);
        if (typeof page.next !== 'number' || page.next === start) return;
        start = page.next;
      }
    }

    /** Many commands in `batch` requests of up to 50; per-command entries. */
    batch(commands, options) {
      return run(this, 'batch', (d) => start(d, 3, '', commandsText(commands), options)).then(entries);
    }

    /** Many messages through batches under the limiter; one entry per item, in order. */
    crmMessageAddMany(items, options) {
      return run(this, 'crmMessageAddMany', (d) => start(d, 4, '', itemTexts(items), options, hook(options, 'onProgress'))).then(entries);
    }

    /** A message to a CRM item's customer: the sender and the item's active chat found,
     * the sender added to the chat when needed; `{id, chatId, connectorId, userId, joined}`. */
    sendToCrmItem(params, options) {
      return run(this, 'sendToCrmItem', (d) => start(d, 5, '', typedText(params), options)).then(delivered);
    }

    /** `sendToCrmItem` for many items, in batches; one entry per item, in order. */
    sendToCrmItems(items, options) {
      return run(this, 'sendToCrmItems', (d) => start(d, 6, '', itemTexts(items), options, hook(options, 'onProgress'))).then(entries);
    }

    /** Releases the client's wasm memory; later calls reject with `NO_AUTH`. */
    free() {
      const st = clients.get(this);
      if (!st || st.freed) return;
      st.freed = true;
      st.frame?.close();
      if (st.busy > 0) return; // released when its last call ends
      const wasm = st.wasm;
      st.wasm = undefined;
      if (wasm) release(wasm);
    }

  }
  // `using client = ...` where the runtime has explicit resource management.
  if (typeof Symbol.dispose === 'symbol') {
    Object.defineProperty(Client.prototype, Symbol.dispose, {
      value() { this.free(); }, writable: true, configurable: true,
    });
  }
  for (const name of METHODS) {
    Object.defineProperty(Client.prototype, name, {
      value: { [name](params, options) { return run(this, name, (d) => start(d, 0, name, typedText(params), options)); } }[name],
      writable: true, configurable: true,
    });
  }

  /** A free function `name` (`crmMessageAdd`, `sendToCrmItem`): the call of a client from
   * the options (or of `options.client`). */
  const free = (name, kind, after) => (params, options) => {
    const method = 'imopenlines.crm.message.add';
    let client;
    try {
      client = options === null || options === undefined ? undefined : options.client;
    } catch (e) {
      return Promise.reject(local('ERROR_ARGUMENT', 'invalidArgument', method, `options could not be read (${textOf(e)})`, 'options'));
    }
    if (client !== undefined && client !== null) {
      if (!clients.has(client)) return Promise.reject(local('ERROR_ARGUMENT', 'invalidArgument', method, 'options.client must be a Client', 'client'));
      return client[name](params, options);
    }
    return ready().then((m) => freeCall(m, name, kind, params, options)).then(after, fail);
  };
  const crmMessageAdd = free('crmMessageAdd', 0);
  const sendToCrmItem = free('sendToCrmItem', 5, delivered);

  /** A free call: params checked first (as the portal does, even when the auth is
   * missing too), then a client from the options for this one call. Its `timeoutMs`
   * and `signal` bound the whole call, the wait for `BX24.init` included. */
  const freeCall = async (m, name, kind, params, options) => {
    const method = 'imopenlines.crm.message.add';
    const input = typedText(params);
    const bad = m.checkParams(name, input);
    if (bad) throw toError(JSON.parse(bad));
    const snap = snapshot(options);
    const timeoutMs = made(m, () => m.callTimeout(snap.text, method));
    const core = m.coreFromOptions(snap.text, method);
    if (core === undefined) {
      const error = m.lastError();
      if (error) throw toError(JSON.parse(error));
    }
    let d;
    const started = now();
    if (core) {
      d = driver(core, refreshOf(options), hook(options, 'onRequest'));
    } else {
      let bx24;
      try {
        bx24 = options?.bx24 ?? globalThis.BX24;
      } catch {
        bx24 = undefined;
      }
      if (bx24 === undefined || bx24 === null) {
        throw local('NO_AUTH', 'auth', method,
          'pass options.webhookUrl, options.accessToken with domain or clientEndpoint, options.client, or load BX24.js');
      }
      d = await bounded(bx24Driver(m, bx24, options, method), m, method, timeoutMs, snap.signal);
    }
    const left = Math.max(1, Math.floor(timeoutMs - (now() - started)));
    try {
      return await start(d, kind, name, input, left >= timeoutMs ? options : withTimeout(options, left));
    } finally {
      release(d);
    }
  };

  /** `options` with another `timeoutMs` (what is left of the call's after BX24.init). */
  const withTimeout = (options, timeoutMs) => {
    try {
      return Object.create(options, { timeoutMs: { value: timeoutMs, enumerable: true } });
    } catch {
      return options;
    }
  };

  /** `promise`, given up when the call's timeout passes or its signal fires (nothing was
   * sent then). */
  const bounded = (promise, m, method, timeoutMs, signal) => new Promise((resolve, reject) => {
    const stop = (aborted) => reject(toError(JSON.parse(m.stoppedError(method, timeoutMs, aborted))));
    if (signal?.aborted) {
      stop(true);
      return;
    }
    const timer = setTimeout(() => stop(false), timeoutMs);
    const onAbort = () => stop(true);
    signal?.addEventListener('abort', onAbort);
    promise.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    });
  });

  function isBitrix24Error(value) {
    return Bitrix24Error[Symbol.hasInstance](value);
  }

  const init = () => ready().then(() => undefined);

  return { Client, Bitrix24Error, crmMessageAdd, sendToCrmItem, isBitrix24Error, init };
}
