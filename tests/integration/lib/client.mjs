// client.mjs - the test's view of a Parley client (docs/protocol.md).
//
// HTTP: register / login / healthz with fetch or a bare http request.
// WebSocket: Client.connect(port, token) resolves once `hello` arrived; every
// later frame is decoded (msgpack) and kept in `frames`. `next(pattern)` waits
// for the first not-yet-taken frame that matches, so a test can wait for
// frames in any order without losing one. `closed` resolves with the close
// code. Every open client is remembered so the test wrapper can close the ones
// a test left open (Client.closeAll()).
import { createHmac } from 'node:crypto';
import http from 'node:http';
import { decode, encode } from '@msgpack/msgpack';
import WebSocket from 'ws';

export const DEFAULT_TIMEOUT = 5000;

// ---------------------------------------------------------------- tokens

// The id of user's "bulk" signed-in session, the one `parley bulk-users` makes:
// the first 32 hex digits of hmac_sha256(secret, "bulk-session:" + user) (common/token.h).
export function bulkSid(secret, user) {
    return createHmac('sha256', secret).update(`bulk-session:${user}`).digest('hex').slice(0, 32);
}

// The session id a token names: its second part.
export const tokenSid = (token) => token.split(':')[1];

// token = user:sid:exp:hex(hmac_sha256(secret, "user:sid:exp")) (common/token.h); sid defaults
// to the user's bulk session (parley bulk-users): a session that does not exist opens no socket
// (4001).
export function mintToken(secret, user, expSeconds, sid = bulkSid(secret, user)) {
    const body = `${user}:${sid}:${expSeconds}`;
    const sig = createHmac('sha256', secret).update(body).digest('hex');
    return `${body}:${sig}`;
}

// ---------------------------------------------------------------- HTTP

// An HTTP request to a gateway with the token as Bearer (or, with cookie: true, as the cookie):
// {status, body (the JSON, or null), text, setCookie}.
export async function api(port, method, path, { token, cookie = false, body, agent } = {}) {
    const headers = {};
    if (token && cookie) headers.cookie = `parley_token=${token}`;
    else if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (agent) headers['user-agent'] = agent;
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let json;
    try {
        json = text ? JSON.parse(text) : null;
    } catch {
        json = null;
    }
    return { status: res.status, body: json, text, setCookie: res.headers.get('set-cookie') };
}

async function postJson(port, path, body, { raw = false } = {}) {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: raw ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let json;
    try {
        json = text ? JSON.parse(text) : null;
    } catch {
        json = null;
    }
    return {
        status: res.status,
        body: json,
        text,
        setCookie: res.headers.get('set-cookie'),
        headers: res.headers,
    };
}

export const register = (port, username, password) => postJson(port, '/api/register', { username, password });
export const login = (port, username, password) => postJson(port, '/api/login', { username, password });
export const postRaw = (port, path, body) => postJson(port, path, body, { raw: true });

// GET /healthz on a fresh connection (no keep-alive: a draining gateway must
// not be hidden behind a pooled socket). Resolves with the status code, or
// with a string ('refused', 'reset', ...) when no HTTP answer came.
export function healthz(port, timeoutMs = 1000) {
    return new Promise((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/healthz', agent: false, timeout: timeoutMs }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode));
            res.on('error', () => resolve(res.statusCode));
        });
        req.on('timeout', () => {
            req.destroy();
            resolve('timeout');
        });
        req.on('error', (e) => resolve(e.code === 'ECONNREFUSED' ? 'refused' : e.code || String(e)));
    });
}

// ---------------------------------------------------------------- WebSocket

const open = new Set();

function describe(pattern) {
    if (typeof pattern === 'function') return pattern.what || pattern.toString();
    return JSON.stringify(pattern);
}

function matcher(pattern) {
    if (typeof pattern === 'function') return pattern;
    return (f) => Object.entries(pattern).every(([k, v]) => f[k] === v);
}

export function brief(frame) {
    return JSON.stringify(frame, (k, v) => {
        if (v instanceof Uint8Array) return `<bin ${v.length}>`;
        if (typeof v === 'string' && v.length > 80) return `${v.slice(0, 40)}...(${v.length})`;
        return v;
    });
}

export class Client {
    // name: label for messages (usually the user name)
    constructor(name) {
        this.name = name;
        this.frames = []; // every decoded frame, in arrival order
        this.taken = new Set(); // indexes returned by next()
        this.waiters = [];
        this.closeInfo = null;
        this.hello = null;
        let resolveClosed;
        this.closed = new Promise((r) => (resolveClosed = r));
        this._resolveClosed = resolveClosed;
    }

    // Opens /ws on a gateway. auth: { token } (query string), { cookie }
    // (parley_token cookie) or {} (nothing). Resolves with the Client once
    // `hello` arrived; rejects with err.status set when the upgrade was
    // refused (HTTP status), or when the socket closed before hello.
    // query: extra query string parameters ({user: 'x'} for --dev-auth).
    static connect(port, token, { name, cookie = false, query = {}, timeoutMs = DEFAULT_TIMEOUT } = {}) {
        const c = new Client(name || (token ? String(token).split(':')[0] : query.user || 'anon'));
        return c._open(port, token, cookie, query, timeoutMs);
    }

    _open(port, token, cookie, query, timeoutMs) {
        const params = new URLSearchParams(query);
        if (token != null && !cookie) params.set('token', token);
        const qs = params.toString();
        const url = `ws://127.0.0.1:${port}/ws${qs ? `?${qs}` : ''}`;
        const headers = {};
        if (token && cookie) headers.cookie = `parley_token=${token}`;
        return new Promise((resolve, reject) => {
            const ws = new WebSocket(url, { headers, maxPayload: 16 << 20 });
            this.ws = ws;
            let settled = false;
            const fail = (err) => {
                if (settled) return;
                settled = true;
                clearTimeout(timer);
                try {
                    ws.terminate();
                } catch {
                    // the socket is already closed: the error below is what matters
                }
                reject(err);
            };
            const timer = setTimeout(() => fail(new Error(`${this.name}: no hello within ${timeoutMs} ms from :${port}; frames: ${this.dump()}`)), timeoutMs);
            ws.on('unexpected-response', (req, res) => {
                let body = '';
                res.setEncoding('utf8');
                res.on('data', (d) => (body += d));
                const done = () => {
                    const e = new Error(`${this.name}: upgrade refused with HTTP ${res.statusCode}: ${body}`);
                    e.status = res.statusCode;
                    e.headers = res.headers;
                    e.body = body;
                    e.upgraded = false;
                    req.destroy();
                    fail(e);
                };
                res.on('end', done);
                res.on('error', done);
                res.on('close', done);
            });
            ws.on('open', () => {
                open.add(this);
                this.upgraded = true;
            });
            ws.on('error', (err) => {
                if (!settled) fail(new Error(`${this.name}: websocket error before hello: ${err.message}`));
            });
            ws.on('message', (data, isBinary) => {
                let f;
                if (!isBinary) {
                    f = { kind: '__text_frame', text: data.toString() };
                } else {
                    try {
                        f = decode(data);
                    } catch (e) {
                        f = { kind: '__undecodable', error: e.message, bytes: data.length };
                    }
                    if (f === null || typeof f !== 'object' || Array.isArray(f)) f = { kind: '__not_a_map', value: f };
                }
                f.__at = Date.now();
                this.frames.push(f);
                if (!settled && f.kind === 'hello') {
                    settled = true;
                    clearTimeout(timer);
                    this.hello = f;
                    resolve(this);
                }
                this._wake();
            });
            ws.on('close', (code, reason) => {
                open.delete(this);
                this.closeInfo = { code, reason: reason.toString() };
                this._resolveClosed(this.closeInfo);
                this._wake();
                if (!settled)
                    fail(Object.assign(new Error(`${this.name}: socket closed (code ${code}) before hello; frames: ${this.dump()}`), { closeCode: code }));
            });
        });
    }

    get isOpen() {
        return this.ws && this.ws.readyState === WebSocket.OPEN;
    }

    send(frame) {
        this.ws.send(encode(frame), { binary: true });
    }

    sendRaw(bytes) {
        this.ws.send(bytes, { binary: true });
    }

    sendTextFrame(str) {
        this.ws.send(str, { binary: false });
    }

    // Frames not taken yet (optionally filtered).
    pending(pattern = () => true) {
        const m = matcher(pattern);
        return this.frames.filter((f, i) => !this.taken.has(i) && m(f));
    }

    all(pattern = () => true) {
        const m = matcher(pattern);
        return this.frames.filter(m);
    }

    _find(m) {
        for (let i = 0; i < this.frames.length; i++) {
            if (!this.taken.has(i) && m(this.frames[i])) {
                this.taken.add(i);
                return this.frames[i];
            }
        }
        return undefined;
    }

    _wake() {
        for (const w of [...this.waiters]) w();
    }

    // Waits for the first untaken frame matching pattern (an object compared
    // field by field with ===, or a predicate) and takes it.
    next(pattern, timeoutMs = DEFAULT_TIMEOUT) {
        const m = matcher(pattern);
        return new Promise((resolve, reject) => {
            const check = () => {
                const f = this._find(m);
                if (f) {
                    finish();
                    resolve(f);
                    return;
                }
                if (this.closeInfo) {
                    finish();
                    reject(
                        new Error(`${this.name}: socket closed (code ${this.closeInfo.code}) while waiting for ${describe(pattern)}; frames: ${this.dump()}`),
                    );
                }
            };
            const timer = setTimeout(() => {
                finish();
                reject(new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${describe(pattern)}; frames: ${this.dump()}`));
            }, timeoutMs);
            const finish = () => {
                clearTimeout(timer);
                this.waiters = this.waiters.filter((w) => w !== check);
            };
            this.waiters.push(check);
            check();
        });
    }

    // Asserts that no untaken frame matching pattern arrives within ms.
    // (Absence can only be observed over a window; keep it short.)
    async expectNone(pattern, ms, what) {
        const m = matcher(pattern);
        const deadline = Date.now() + ms;
        while (Date.now() < deadline) {
            const bad = this.pending(m);
            if (bad.length) throw new Error(`${this.name}: expected no ${what || describe(pattern)} but got ${bad.map(brief).join(', ')}`);
            await new Promise((r) => setTimeout(r, Math.min(25, deadline - Date.now())));
        }
        const bad = this.pending(m);
        if (bad.length) throw new Error(`${this.name}: expected no ${what || describe(pattern)} but got ${bad.map(brief).join(', ')}`);
    }

    // Resolves with {code} when closed, or rejects after timeoutMs.
    waitClosed(timeoutMs = DEFAULT_TIMEOUT) {
        return Promise.race([
            this.closed,
            new Promise((_, reject) =>
                setTimeout(() => reject(new Error(`${this.name}: socket still open after ${timeoutMs} ms; frames: ${this.dump()}`)), timeoutMs),
            ),
        ]);
    }

    // Normal close; resolves when the close handshake finished.
    async close(timeoutMs = DEFAULT_TIMEOUT) {
        if (this.ws && this.ws.readyState !== WebSocket.CLOSED) {
            this.ws.close(1000);
            const t = setTimeout(() => this.ws.terminate(), timeoutMs);
            await this.closed;
            clearTimeout(t);
        }
        return this.closeInfo;
    }

    terminate() {
        if (this.ws) this.ws.terminate();
    }

    dump(last = 12) {
        const fs = this.frames.slice(-last).map(brief);
        const more = this.frames.length > last ? `(${this.frames.length - last} earlier) ` : '';
        return `${more}[${fs.join(', ')}]`;
    }

    static async closeAll() {
        await Promise.all([...open].map((c) => c.close(1000).catch(() => c.terminate())));
    }
}

// Sends a text and waits until it is acknowledged, retrying with the same cid
// on `error unavailable` or when no answer came within retryMs (the client
// behaviour the contract asks for). Other errors reject.
// Sends a text and waits for its answer; fails unless it is the ack.
// An upgrade's outcome, for tests of who may open one: 'open' when hello came
// (the socket is closed again), the HTTP status when the upgrade was refused, or
// 'closed CODE' for a socket closed before hello (e.g. 4001, a revoked session).
export async function upgradeResult(port, token) {
    try {
        const c = await Client.connect(port, token);
        await c.close();
        return 'open';
    } catch (e) {
        if (e.status !== undefined) return e.status;
        if (e.closeCode !== undefined) return `closed ${e.closeCode}`;
        throw e;
    }
}

export async function sendAck(client, to, data, cid) {
    client.send({ kind: 'text', to, data, cid });
    const f = await client.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === cid);
    if (f.kind !== 'ack') throw new Error(`${client.name} -> ${to} cid ${cid}: expected ack, got ${brief(f)}`);
    return f;
}

export async function sendReliably(client, frame, { timeoutMs = 15000, retryMs = 2000 } = {}) {
    const deadline = Date.now() + timeoutMs;
    let attempts = 0;
    let lastError = null;
    while (Date.now() < deadline) {
        attempts++;
        client.send(frame);
        const answer = await client
            .next((f) => (f.kind === 'ack' || f.kind === 'error') && f.cid === frame.cid, Math.min(retryMs, Math.max(1, deadline - Date.now())))
            .catch((e) => {
                if (!client.isOpen) throw e;
                return null;
            });
        if (answer && answer.kind === 'ack') return answer;
        if (answer && answer.code !== 'unavailable') throw new Error(`${client.name}: send ${frame.cid} refused: ${brief(answer)}`);
        lastError = answer;
        if (answer) await new Promise((r) => setTimeout(r, 100)); // backoff after unavailable
    }
    throw new Error(`${client.name}: send ${frame.cid} not acked within ${timeoutMs} ms after ${attempts} attempts (last answer ${brief(lastError)})`);
}

// Streams `count` texts from client to `to` at a steady pace, each with a
// unique cid, retrying the same cid after `error unavailable` (after
// unavailableRetryMs) or when no ack came within noAckRetryMs, until every
// cid is acked or timeoutMs passed. beforeSend(i) runs before message i (to
// kill something mid-stream). Returns {msgs: [{cid, data, id, tries}],
// problems: [string], unavailable, timeouts}; rejects if not all are acked.
export async function sendStream(client, to, count, opts = {}) {
    const { prefix = 'st', paceMs = 10, noAckRetryMs = 2000, unavailableRetryMs = 100, timeoutMs = 20000, beforeSend = async () => {} } = opts;
    const msgs = Array.from({ length: count }, (_, i) => ({ cid: `${prefix}-${i}`, data: `${prefix} ${i}`, id: null, sentAt: 0, tries: 0 }));
    const byCid = new Map(msgs.map((m) => [m.cid, m]));
    const res = { msgs, problems: [], unavailable: 0, timeouts: 0 };
    const transmit = (m) => {
        if (!client.isOpen) return;
        m.tries++;
        m.sentAt = Date.now();
        client.send({ kind: 'text', to, data: m.data, cid: m.cid });
    };
    let seen = 0;
    const timers = new Set();
    const pump = setInterval(() => {
        for (; seen < client.frames.length; seen++) {
            const f = client.frames[seen];
            const m = byCid.get(f.cid);
            if (!m) continue;
            if (f.kind === 'ack') {
                if (m.id !== null && m.id !== f.id) res.problems.push(`cid ${m.cid} acked with two ids: ${m.id} and ${f.id}`);
                m.id = f.id;
            } else if (f.kind === 'error' && f.code === 'unavailable') {
                res.unavailable++;
                if (m.id === null) {
                    const t = setTimeout(() => {
                        timers.delete(t);
                        if (m.id === null) transmit(m);
                    }, unavailableRetryMs);
                    timers.add(t);
                }
            } else if (f.kind === 'error') {
                res.problems.push(`unexpected error for ${m.cid}: ${brief(f)}`);
            }
        }
        const now = Date.now();
        for (const m of msgs)
            if (m.tries > 0 && m.id === null && now - m.sentAt > noAckRetryMs) {
                res.timeouts++;
                transmit(m);
            }
    }, 20);
    try {
        for (let i = 0; i < count; i++) {
            await beforeSend(i);
            transmit(msgs[i]);
            await new Promise((r) => setTimeout(r, paceMs));
        }
        const deadline = Date.now() + timeoutMs;
        while (msgs.some((m) => m.id === null)) {
            if (!client.isOpen)
                throw new Error(
                    `${client.name}: socket closed (${JSON.stringify(client.closeInfo)}) with ${msgs.filter((m) => m.id === null).length} messages not acked`,
                );
            if (Date.now() > deadline) {
                const left = msgs.filter((m) => m.id === null).map((m) => `${m.cid}(tries ${m.tries})`);
                throw new Error(`${left.length} of ${count} not acked ${timeoutMs} ms after the last send: ${left.slice(0, 20).join(' ')}`);
            }
            await new Promise((r) => setTimeout(r, 50));
        }
    } finally {
        clearInterval(pump);
        for (const t of timers) clearTimeout(t);
    }
    return res;
}
