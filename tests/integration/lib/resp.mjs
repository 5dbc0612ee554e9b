// resp.mjs - talking to Redis the way a router or a gateway does, for the
// tests that drive the router and the Lua scripts directly (router.test.mjs,
// scripts.test.mjs) rather than through a WebSocket client.
//
//   Conn        one persistent RESP2 connection: call() (bulk strings as
//               strings) / callBuffers() (as Buffers); calls made without
//               awaiting each other are pipelined, replies come in order.
//   Subscriber  one PSUBSCRIBE connection that keeps every message:
//               messages(n) / envelopes(n) wait for the next n with a deadline,
//               drain(conn) returns what was published before a fence.
//   envelopes() a gateway channel payload: one or more concatenated msgpack
//               envelopes (docs/internals.md), each with its frame `f` decoded.
//   slotOf()    the routing slot of a conversation key (common/keys.c).
//   loadScripts(), callScript(), sessionOpen(), sessionClose()
//               the Lua scripts called by hand, by the names and SHA1s
//               `parley scripts --load` prints.
//
// Errors: a Redis error reply rejects the call with an Error holding its text;
// a closed connection rejects every call still waiting. Replies are parsed by
// cluster.mjs's parseResp (RESP2), which has no room for an error inside an
// array (EXEC, a script returning a table with an error): not for those.
import net from 'node:net';
import { decode, decodeMulti } from '@msgpack/msgpack';
import { SLOTS, parseResp, waitFor } from './cluster.mjs';

// ---------------------------------------------------------------- connections

function encodeCommand(args) {
    const parts = [Buffer.from(`*${args.length}\r\n`)];
    for (const a of args) {
        const b = Buffer.isBuffer(a) || a instanceof Uint8Array ? Buffer.from(a) : Buffer.from(String(a));
        parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
    }
    return Buffer.concat(parts);
}

// A socket to 127.0.0.1:port that parses every reply (Buffers for bulk
// strings) and hands it to onReply(value | {err}).
class RespSocket {
    constructor(port, onReply) {
        this.port = port;
        this.buf = Buffer.alloc(0);
        this.onReply = onReply;
        this.closed = false;
        this.sock = net.createConnection({ host: '127.0.0.1', port });
        this.sock.on('data', (d) => {
            this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
            for (;;) {
                const r = parseResp(this.buf, 0, false);
                if (!r) break;
                this.buf = this.buf.subarray(r.end);
                this.onReply(r.err !== undefined ? { err: r.err } : r.value);
            }
        });
        this.ready = new Promise((resolve, reject) => {
            this.sock.once('connect', resolve);
            this.sock.once('error', (e) => reject(new Error(`redis :${port}: ${e.code || e.message}`)));
        });
        this.sock.on('error', () => {});
        this.sock.on('close', () => {
            this.closed = true;
            this.onClose?.();
        });
    }

    write(args) {
        this.sock.write(encodeCommand(args));
    }

    close() {
        this.sock.destroy();
    }
}

const asStrings = (v) => (Buffer.isBuffer(v) ? v.toString('utf8') : Array.isArray(v) ? v.map(asStrings) : v);

export class Conn {
    // Resolves once connected.
    static async open(port) {
        const c = new Conn(port);
        await c.s.ready;
        return c;
    }

    constructor(port) {
        this.pending = []; // {resolve, reject, args, strings}, in the order sent
        this.s = new RespSocket(port, (v) => {
            const p = this.pending.shift();
            if (!p) return;
            if (v && v.err !== undefined) p.reject(new Error(`redis ${p.args.slice(0, 2).join(' ')}: ${v.err}`));
            else p.resolve(p.strings ? asStrings(v) : v);
        });
        this.s.onClose = () => {
            for (const p of this.pending.splice(0)) p.reject(new Error(`redis :${port}: connection closed before the reply to ${p.args[0]}`));
        };
    }

    _send(args, strings) {
        return new Promise((resolve, reject) => {
            if (this.s.closed) return reject(new Error(`redis :${this.s.port}: connection closed`));
            this.pending.push({ resolve, reject, args, strings });
            this.s.write(args);
        });
    }

    // Bulk strings come back as strings, integers as numbers, nil as null.
    call(...args) {
        return this._send(args, true);
    }

    // The same with bulk strings as Buffers (msgpack values, binary data).
    callBuffers(...args) {
        return this._send(args, false);
    }

    close() {
        this.s.close();
    }
}

// Every message published on the channels matching `patterns`, kept in
// arrival order as {channel, payload: Buffer}.
export class Subscriber {
    static async open(port, ...patterns) {
        const s = new Subscriber(port);
        await s.s.ready;
        s.s.write(['PSUBSCRIBE', ...patterns, FENCE]);
        await waitFor(() => s.subscribed === patterns.length + 1, { timeout: 3000, interval: 5, what: `PSUBSCRIBE ${patterns.join(' ')}` });
        return s;
    }

    constructor(port) {
        this.queue = [];
        this.subscribed = 0;
        this.fences = 0;
        this.s = new RespSocket(port, (v) => {
            const kind = Array.isArray(v) && v[0].toString();
            if (kind === 'psubscribe') this.subscribed = v[2];
            else if (kind === 'pmessage') this.queue.push({ channel: v[2].toString(), payload: v[3] });
        });
    }

    // The next n messages, or fewer when `timeout` ms pass first.
    async messages(n, { timeout = 3000 } = {}) {
        await waitFor(() => this.queue.length >= n, { timeout, interval: 5 }).catch(() => {});
        return this.queue.splice(0, Math.min(n, this.queue.length));
    }

    // The next n envelopes ([{channel, env}] from gateway channels, see
    // envelopes()), taking whole messages: it may return more than n (the
    // rest of the last payload), or fewer when `timeout` ms pass first.
    async envelopes(n, { timeout = 3000 } = {}) {
        const out = [];
        const deadline = Date.now() + timeout;
        while (out.length < n) {
            const left = deadline - Date.now();
            if (left <= 0) break;
            const [m] = await this.messages(1, { timeout: left });
            if (!m) break;
            for (const env of envelopes(m.payload)) out.push({ channel: m.channel, env });
        }
        return out;
    }

    // Every message published before this call (through conn: a marker on a
    // channel only this subscriber watches; Redis delivers one subscriber's
    // messages in publish order). For what Redis publishes while running a
    // command of conn's, which is then complete: a script's publishes.
    async drain(conn) {
        const mark = `${process.pid}-${++this.fences}`;
        await conn.call('PUBLISH', FENCE, mark);
        const isMark = (m) => m.channel === FENCE && m.payload.toString() === mark;
        await waitFor(() => this.queue.some(isMark), { timeout: 3000, interval: 2, what: `fence ${mark}` });
        const i = this.queue.findIndex(isMark);
        return this.queue.splice(0, i + 1).slice(0, i);
    }

    close() {
        this.s.close();
    }
}
const FENCE = 'parley-test:fence';

// ---------------------------------------------------------------- envelopes

const text = (v) => (v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : Array.isArray(v) ? v.map(text) : v);

// The envelopes of a payload published on parley:gw:ID (several may follow
// one another in one payload). String values come back as strings, except
// `f`, the client frame (a msgpack string holding msgpack), which comes back
// decoded.
export function envelopes(payload) {
    const out = [];
    for (const env of decodeMulti(payload, { rawStrings: true })) {
        for (const [k, v] of Object.entries(env)) env[k] = k === 'f' && v instanceof Uint8Array ? decode(v) : text(v);
        out.push(env);
    }
    return out;
}

// One msgpack value (a stored frame, a presence payload).
export const unpack = (buf) => decode(buf);

// ---------------------------------------------------------------- routing

// The key of a conversation: "#group", or the two user names sorted and
// joined by "|" (docs/internals.md).
export function conversationKey(from, to) {
    return to.startsWith('#') ? to : [from, to].sort().join('|');
}

// Routing slot of a conversation key: fnv1a32(key) % 64 (common/keys.c keys_slot).
export function slotOf(conv) {
    let h = 0x811c9dc5;
    for (const byte of Buffer.from(conv)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
    return h % SLOTS;
}

// ---------------------------------------------------------------- scripts

// The key of one of a user's records: parley:{u:NAME}:WHAT (docs/internals.md).
export const userKey = (user, what) => `parley:{u:${user}}:${what}`;

// Loads every script into the cluster's Redis with `parley scripts --load`;
// resolves with {name: sha1}. The send function's "sha1" is its function
// name (parley_send_...), called with FCALL.
export async function loadScripts(cluster) {
    const r = await cluster.cli(['scripts', '--load']);
    if (!r.ok) throw new Error(`parley scripts --load: ${r.stderr || r.stdout}`);
    return Object.fromEntries(
        r.stdout
            .trim()
            .split('\n')
            .map((l) => l.split(/\s+/).slice(0, 2)),
    );
}

// Script `name` with its KEYS and ARGV, as the router or a gateway runs it:
// FCALL for a function, EVALSHA for a script. The reply has strings, or
// Buffers with buffers (for replies holding msgpack).
// A step's continuation (lib/step.lua, lib/fork.lua: docs/internals.md "Scripts in steps") is
// followed as common/scripts_run.c does, so the reply is the chain's last one.
export async function callScript(conn, sha, name, keys, args, { buffers = false } = {}) {
    if (!sha[name]) throw new Error(`no script ${name} in ${Object.keys(sha)}`);
    const cmd = [sha[name].startsWith('parley_') ? 'FCALL' : 'EVALSHA', sha[name], keys.length, ...keys, ...args];
    const reply = await (buffers ? conn.callBuffers(...cmd) : conn.call(...cmd));
    return followSteps(conn, sha, reply, { buffers });
}

const asText = (x) => (Buffer.isBuffer(x) ? x.toString() : x);

// [name, nkeys, keys..., args...] of a continuation -> {name, keys, args}
function stepOf(a) {
    const n = Number(a[1]);
    return { name: asText(a[0]), keys: a.slice(2, 2 + n), args: a.slice(2 + n) };
}

export async function followSteps(conn, sha, reply, opts = {}) {
    for (let hops = 0; Array.isArray(reply) && reply.length > 0; hops++) {
        const head = asText(reply[0]);
        if (head !== 'parley:next' && head !== 'parley:fork' && head !== 'parley:bulk') break;
        if (hops >= 64) throw new Error('more than 64 steps');
        if (head === 'parley:next') {
            const st = stepOf(reply.slice(1));
            return callScript(conn, sha, st.name, st.keys, st.args, opts);
        }
        const outs = [];
        for (const b of reply.slice(1, -1)) {
            const st = stepOf(b);
            const out = await callScript(conn, sha, st.name, st.keys, st.args, { buffers: true });
            outs.push(out === null ? '' : out);
        }
        const join = stepOf(reply[reply.length - 1]);
        return callScript(conn, sha, join.name, join.keys, [...join.args, ...outs], opts);
    }
    return reply;
}

// session_open of USER's connection CONNID on gateway GW (session "GW#CONNID"):
// {seq, epoch, from} (the offline entries are (from, seq]), bulk strings as
// Buffers; with limit (--user-sessions), the user's session count (an
// integer) when refused; with login (the signed-in session its token names,
// at `now` ms), -1 when that login is gone. The chain starts as
// scripts_session_open does (common/scripts_account.c): gw_session.lua
// "add", then session_open.lua.
export function sessionOpen(conn, sha, user, gw, connId, { reopen = false, limit = 0, login = '', now = 0 } = {}) {
    return callScript(conn, sha, 'gw_session', [`parley:gw:${gw}:sessions`], [...sessionOpenTail(user, gw, connId, { reopen, limit, login, now })], {
        buffers: true,
    });
}

// gw_session.lua's ARGV for an open: "add", the member, then the tail that runs session_open.lua.
export function sessionOpenTail(user, gw, connId, { reopen = false, limit = 0, login = '', now = 0 } = {}) {
    const keys = [userKey(user, 'sessions'), userKey(user, 'meta'), userKey(user, 'inbox'), userKey(user, 'logins')];
    return [
        'add',
        `${user}#${connId}`,
        'n',
        'session_open',
        keys.length,
        ...keys,
        user,
        `${gw}#${connId}`,
        `${user}#${connId}`,
        `parley:presence:${user}`,
        reopen ? '1' : '0',
        limit,
        'parley:sessions:limit',
        login,
        now,
        'parley:online',
        'parley:{parley:online}:v',
        'parley:sessions:full',
        'parley:{parley:sessions:full}:v',
        `parley:gw:${gw}:sessions`,
    ];
}

// session_close.lua's chain as scripts_session_close starts it: reaping, reap_check.lua on the
// gateway's alive key first.
export function sessionClose(conn, sha, user, gw, connId, reaping = false) {
    const keys = [userKey(user, 'sessions'), userKey(user, 'meta')];
    const args = [
        user,
        `${gw}#${connId}`,
        `${user}#${connId}`,
        `parley:presence:${user}`,
        reaping ? '1' : '0',
        'parley:sessions:limit',
        'parley:online',
        'parley:{parley:online}:v',
        'parley:sessions:full',
        'parley:{parley:sessions:full}:v',
        `parley:gw:${gw}:sessions`,
    ];
    if (!reaping) return callScript(conn, sha, 'session_close', keys, args);
    return callScript(conn, sha, 'reap_check', [`parley:gw:${gw}:alive`], ['alive', -1, 'n', 'session_close', keys.length, ...keys, ...args]);
}
