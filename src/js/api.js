// The package's public face, shared by every entry (browser, Node ESM, CommonJS):
// `Client`, `crmMessageAdd`, `Bitrix24Error`, `isBitrix24Error`, `init`.
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

  class Bitrix24Error extends Error {
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
      const names = Array.from(m.methods());
      if (names.join() !== METHODS.join()) throw new Error(`method tables differ: ${names}`);
      m.install(post);
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

  /** The wasm client behind `self`, created on first use. */
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
      const wasm = st.wasm;
      st.wasm = undefined;
      wasm.free();
    }
  };

  /** Runs `f(wasmClient)`; every failure, synchronous or not, is a rejection. While a
   * call runs, `free()` waits for it (the JS layer sends attempts with the wasm object). */
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

  /** A form body, as BX24.js sends it: a CORS simple request (no preflight). */
  const HEADERS = { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' };

  /** The one place requests are made: POSTs a prepared request (url and body from the
   * module) with the call's signal and resolves to `[status, text, response]` once the
   * whole body is read. First attempts are sent with it here; the module sends every
   * other request (repeats, batches, reads for verification) with it too. */
  const post = (url, body, signal) => fetch(url, { method: 'POST', headers: HEADERS, body, signal })
    .then((res) => res.text().then((text) => [typeof res.status === 'number' ? res.status : 0, text, res]));

  /** Sends the first attempt of a call the module began and hands the answer, or why
   * there was none, back to it; the module decides (result, error, or going on with
   * waits and further attempts in `resume`). The call's timeout and the caller's
   * signal bound the attempt here, as any careful `fetch` does. */
  const attempt = async (c, begun) => {
    const [s, ms, hasSignal, url, body] = begun.split('\n');
    const slot = +s;
    const timeout = +ms;
    if (url === undefined) return c.resume(slot, timeout).then(JSON.parse);
    const deadline = performance.now() + timeout;
    const signal = hasSignal === '1' ? c.signal(slot) : undefined;
    const controller = new AbortController();
    const abort = () => controller.abort();
    const timer = setTimeout(abort, timeout);
    let out;
    let hooked = false;
    try {
      signal?.addEventListener('abort', abort);
      hooked = true;
      if (signal?.aborted) abort();
      let sent = false;
      try {
        if (controller.signal.aborted) throw undefined;
        const pending = post(url, body, controller.signal);
        sent = true;
        const [status, text, res] = await pending;
        out = c.finish(slot, status, text, res);
      } catch (e) {
        const stop = !controller.signal.aborted ? 0 : signal?.aborted ? 2 : 1;
        out = c.fail(slot, sent, e, stop);
      }
    } catch (e) {
      // the caller's signal could not be listened to
      out = c.fail(slot, false, e, 3);
    } finally {
      clearTimeout(timer);
      if (hooked) signal?.removeEventListener('abort', abort);
    }
    if (out === undefined) return c.resume(slot, deadline - performance.now()).then(JSON.parse);
    if (typeof out === 'string') return JSON.parse(out);
    throw toError(out);
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

  /** Typed params as JSON text for the module: the text, `undefined` when JSON has
   * none (no params, a function), or what serializing them threw (a throwing getter,
   * a revoked proxy, a cycle), which the module reports. */
  const typedText = (params) => {
    try {
      return JSON.stringify(params, strict);
    } catch (e) {
      return e ?? new Error('params could not be serialized');
    }
  };

  /** A mass send's items as their JSON texts (`typedText` each), or `items` itself
   * when it is not a readable list (the module reports it). */
  const itemTexts = (items) => {
    try {
      if (!Array.isArray(items)) return items;
      const texts = new Array(items.length);
      for (let i = 0; i < texts.length; i++) {
        let item;
        try {
          item = items[i];
        } catch (e) {
          texts[i] = e ?? new Error('the item could not be read');
          continue;
        }
        texts[i] = typedText(item);
      }
      return texts;
    } catch {
      return undefined;
    }
  };

  /** `call()` params for the module: their JSON text (`toJSON` honoured, `undefined`
   * members and functions left out, as a JSON body would have them), `undefined` for
   * none, `true` when they are not a plain object, or what serializing them threw. */
  const callText = (params) => {
    if (params === undefined || params === null) return undefined;
    try {
      if (typeof params !== 'object' || Array.isArray(params)) return true;
      return JSON.stringify(params) ?? new Error('not serializable');
    } catch (e) {
      return e ?? new Error('not serializable');
    }
  };

  /** A typed method (`kind` 0, `name` its JS name), `call()` of any method (1) or
   * `callPage()` (2). */
  const send = (c, name, params, options, kind) => {
    const input = kind === 0 ? typedText(params) : callText(params);
    const begun = c.begin(name, input, options, kind);
    if (typeof begun === 'string') return attempt(c, begun);
    if (begun instanceof Promise) return begun.then(JSON.parse); // a message to verify: run whole by the module
    return Promise.reject(begun);
  };

  /** The channel to the parent window of a portal's app frame. `window.name` names the
   * portal and the app's session (the module reads it); commands go by `postMessage`
   * to the portal's origin only, answers are taken from that origin only and matched
   * by callback id, and every command waits at most `ms`. */
  const openFrame = (m, method, ms) => {
    const name = typeof globalThis.name === 'string' ? globalThis.name : '';
    const origin = m.frameOrigin(name);
    if (typeof origin !== 'string') throw origin;
    const parent = globalThis.parent;
    if (parent === undefined || parent === null) throw local('NO_AUTH', 'auth', method, 'there is no parent window');
    const waiting = new Map();
    const onMessage = (event) => {
      if (event?.origin !== origin || typeof event.data !== 'string') return;
      const reply = m.frameReply(event.data);
      const answer = reply && waiting.get(reply[0]);
      if (!answer) return;
      let value = null;
      try {
        value = JSON.parse(reply[1]);
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

  /** `options` with its hook functions (`names`) made quiet; other options read as
   * given (an object inheriting from the caller's). */
  const withQuietHooks = (options, names) => {
    if (options === null || typeof options !== 'object') return options;
    const own = {};
    try {
      for (const name of names) {
        const f = options[name];
        if (typeof f === 'function') own[name] = { value: quiet(f), enumerable: true };
      }
      return Object.keys(own).length ? Object.create(options, own) : options;
    } catch {
      return options; // unreadable: the module reports it as an invalid option
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

  class Client {
    /** Use `Client.fromWebhook`, `fromToken`, `fromBx24` or `fromFrame`. A client made
     * with `new Client()` rejects every call with `NO_AUTH`. */
    constructor(build, make) {
      if (build === BUILD) clients.set(this, { make, wasm: undefined, pending: undefined, freed: false, busy: 0, frame: undefined });
    }

    static fromWebhook(url, options) {
      return new Client(BUILD, (m) => m.Client.fromWebhook(url, withQuietHooks(options, ['onRequest'])));
    }

    static fromToken(auth, options) {
      return new Client(BUILD, (m) => m.Client.fromToken(auth, withQuietHooks(options, ['onRequest'])));
    }

    static fromBx24(bx24, options) {
      return ready().then((m) => m.Client.fromBx24(bx24, withQuietHooks(options, ['onRequest']))).then(wrap, fail);
    }

    static fromFrame(options) {
      const method = 'Client.fromFrame';
      return ready().then(async (m) => {
        const opts = withQuietHooks(options, ['onRequest']);
        const ms = m.frameTimeout(opts);
        if (typeof ms !== 'number') throw ms;
        const frame = openFrame(m, method, ms);
        try {
          let init;
          try {
            init = await frame.send('getInitData', '');
          } catch (e) {
            throw local('NO_AUTH', 'auth', method, textOf(e));
          }
          const client = wrap(m.Client.fromFrameInit(frame.name, init, () => frame.send('refreshAuth', ''), opts));
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

    get portal() { return clients.get(this)?.wasm?.portal; }

    get refreshes() { return clients.get(this)?.wasm?.refreshes ?? 0; }

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

    call(method, params, options) { return run(this, 'call', (c) => send(c, method, params, options, 1)); }

    /** One page of a list method: `{result, total, next}`. */
    callPage(method, params, options) { return run(this, 'callPage', (c) => send(c, method, params, options, 2)); }

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
      return run(this, 'batch', (c) => c.batch(commands, options)).then(entries);
    }

    /** Many messages through batches under the limiter; one entry per item, in order. */
    crmMessageAddMany(items, options) {
      return run(this, 'crmMessageAddMany', (c) => c.crmMessageAddMany(itemTexts(items), withQuietHooks(options, ['onProgress']))).then(entries);
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
      wasm?.free();
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
      value: { [name](params, options) { return run(this, name, (c) => send(c, name, params, options, 0)); } }[name],
      writable: true, configurable: true,
    });
  }

  function crmMessageAdd(params, options) {
    const method = 'imopenlines.crm.message.add';
    let client;
    try {
      client = options === null || options === undefined ? undefined : options.client;
    } catch (e) {
      return Promise.reject(local('ERROR_ARGUMENT', 'invalidArgument', method, `options could not be read (${textOf(e)})`, 'options'));
    }
    if (client !== undefined && client !== null) {
      if (!clients.has(client)) return Promise.reject(local('ERROR_ARGUMENT', 'invalidArgument', method, 'options.client must be a Client', 'client'));
      return client.crmMessageAdd(params, options);
    }
    return ready().then((m) => m.crmMessageAdd(typedText(params), options)).then(JSON.parse, fail);
  }

  function isBitrix24Error(value) {
    try {
      if (value instanceof Bitrix24Error) return true;
      // An error from another copy of the package (e.g. both its ESM and CJS entries).
      return value instanceof Error && value.name === 'Bitrix24Error' && typeof value.code === 'string';
    } catch {
      return false;
    }
  }

  const init = () => ready().then(() => undefined);

  return { Client, Bitrix24Error, crmMessageAdd, isBitrix24Error, init };
}
