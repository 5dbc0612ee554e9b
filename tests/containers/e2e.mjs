// e2e.mjs: end-to-end tests of the docker compose stack, through its load
// balancer, from a container on the stack's network (tests/containers/run.sh
// starts it). Written against docs/protocol.md; Redis is only read, with the
// redis-cli commands docs/deploy.md documents, to check where sessions are and
// that acknowledged messages are stored.
//
// Things only the host can do (stop a gateway container, restart Redis, run
// redis-cli in the redis container) are asked for on stdout with a line
//   @@ ID OP ARG...
// and answered on stdin with "ID STATUS BASE64-OUTPUT" (host() below).
//
// Environment: PARLEY_URL (http://lb:8080), PARLEY_LB_STATS
// (http://lb:8404/stats;csv), PARLEY_GATEWAYS (3), PARLEY_RUN_ID (names),
// PARLEY_TEST_SECRET (the secret in the env file the stack was started with),
// PARLEY_DEFAULT_SECRET (the local-only default of deploy/docker/parley.env),
// PARLEY_WEB_INDEX_SHA256 (of web/dist/index.html; empty: expect the placeholder).
// Output: "ok - NAME" / "not ok - NAME: why" per step, then "N passed, N failed".
import { createHash, createHmac } from 'node:crypto';
import readline from 'node:readline';
import { decode, encode } from '@msgpack/msgpack';
import WebSocket from 'ws';

const BASE = process.env.PARLEY_URL || 'http://lb:8080';
const STATS = process.env.PARLEY_LB_STATS || 'http://lb:8404/stats;csv';
const GATEWAYS = Number(process.env.PARLEY_GATEWAYS || 3);
const RUN = process.env.PARLEY_RUN_ID || Date.now().toString(36);
const PASSWORD = 'correct horse battery';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------ host channel

let nextOp = 1;
const pendingOps = new Map();
readline.createInterface({ input: process.stdin }).on('line', (line) => {
    const [id, status, b64 = ''] = line.trim().split(' ');
    const op = pendingOps.get(id);
    if (!op) return;
    pendingOps.delete(id);
    const out = Buffer.from(b64, 'base64').toString('latin1');
    if (status === '0') op.resolve(out);
    else op.reject(new Error(`host op "${op.what}" failed (status ${status}): ${out.slice(0, 2000)}`));
});

// host('redis-cli', 'SMEMBERS', 'parley:online') -> its stdout (latin1: the
// inbox lists hold msgpack bytes, the strings in them stay readable)
function host(...args) {
    const id = String(nextOp++);
    for (const a of args) if (!/^[\x21-\x7e]+$/.test(a)) throw new Error(`host op argument ${JSON.stringify(a)}: spaces or control characters`);
    return new Promise((resolve, reject) => {
        pendingOps.set(id, { resolve, reject, what: args.join(' ') });
        process.stdout.write(`@@ ${id} ${args.join(' ')}\n`);
    });
}
const redis = (...args) => host('redis-cli', ...args);
const lines = (out) =>
    out
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);

// ------------------------------------------------------------ runner

let passed = 0;
let failed = 0;
function withTimeout(p, ms, what) {
    let t;
    return Promise.race([p, new Promise((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: timed out after ${ms} ms`)), ms)))]).finally(() =>
        clearTimeout(t),
    );
}
async function step(name, fn, timeoutMs = 90000) {
    const t0 = Date.now();
    try {
        const note = await withTimeout(fn(), timeoutMs, name);
        passed++;
        console.log(`ok - ${name} (${Date.now() - t0} ms)${note ? `: ${note}` : ''}`);
        return true;
    } catch (e) {
        failed++;
        console.log(`not ok - ${name} (${Date.now() - t0} ms): ${e && e.stack ? e.stack : e}`);
        return false;
    }
}
function assert(cond, msg) {
    if (!cond) throw new Error(msg);
}
async function until(cond, timeoutMs, what, everyMs = 100) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
        try {
            last = await cond();
            if (last) return last;
        } catch (e) {
            last = e;
        }
        if (Date.now() > deadline) throw new Error(`${what}: not true after ${timeoutMs} ms (last: ${last && last.message ? last.message : last})`);
        await sleep(everyMs);
    }
}

// ------------------------------------------------------------ HTTP

async function api(path, { body, token, method } = {}) {
    const headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(BASE + path, {
        method: method || (body !== undefined ? 'POST' : 'GET'),
        headers,
        body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let json = null;
    try {
        json = JSON.parse(text);
    } catch {
        // not JSON (an HTML error page, an empty body): json stays null, text tells
    }
    return { status: res.status, json, text, type: res.headers.get('content-type') || '' };
}

// haproxy's CSV stats: [{name, status}] of the gateway slots
async function lbServers() {
    const res = await fetch(STATS);
    const rows = (await res.text()).split('\n');
    const head = rows[0].replace(/^# /, '').split(',');
    const col = (n) => head.indexOf(n);
    return rows
        .slice(1)
        .map((r) => r.split(','))
        .filter((r) => r[col('pxname')] === 'gateways' && r[col('svname')] !== 'BACKEND' && r[col('svname')] !== 'FRONTEND')
        .map((r) => ({ name: r[col('svname')], status: r[col('status')], check: r[col('check_status')] }));
}
const upServers = async () => (await lbServers()).filter((s) => s.status === 'UP');

// ------------------------------------------------------------ a client

// Peer: one user's client as the contract asks a client to behave. It keeps
// its highest seq and the epoch; when the socket closes it reconnects through
// the load balancer and sends `sync {after, epoch}`; it retransmits each
// unacknowledged text with the same cid (after `error unavailable`, after a
// reconnect, or after 3 s without an answer). Every frame is kept.
class Peer {
    constructor(user, token) {
        this.user = user;
        this.token = token;
        this.frames = [];
        this.texts = []; // text frames, in arrival order, duplicates included
        this.outbox = new Map(); // cid -> {to, data, id, tries, sentAt, retryAt}
        this.problems = [];
        this.epoch = null;
        this.lastSeq = 0;
        this.hello = null;
        this.connects = 0;
        this.closes = [];
        this.syncs = [];
        this.reconnect = false;
        this.pump = setInterval(() => this._retransmit(), 100);
    }

    get isOpen() {
        return this.ws && this.ws.readyState === WebSocket.OPEN && this.hello !== null;
    }

    // resolves once `hello` arrived on a new socket
    open(timeoutMs = 10000) {
        const url = `${BASE.replace(/^http/, 'ws')}/ws?token=${encodeURIComponent(this.token)}`;
        return new Promise((resolve, reject) => {
            const ws = new WebSocket(url, { maxPayload: 16 << 20 });
            this.ws = ws;
            this.hello = null;
            let settled = false;
            const fail = (e) => {
                if (settled) return;
                settled = true;
                clearTimeout(timer);
                ws.terminate();
                reject(e);
            };
            const timer = setTimeout(() => fail(new Error(`${this.user}: no hello within ${timeoutMs} ms`)), timeoutMs);
            ws.on('unexpected-response', (req, res) => fail(new Error(`${this.user}: upgrade refused with HTTP ${res.statusCode}`)));
            ws.on('error', (e) => fail(new Error(`${this.user}: ${e.message}`)));
            ws.on('message', (data, isBinary) => {
                if (!isBinary) return this.problems.push('text frame from the server');
                const f = decode(data);
                f.conn = this.connects + (settled ? 0 : 1);
                this.frames.push(f);
                if (f.kind === 'hello') {
                    settled = true;
                    clearTimeout(timer);
                    this.connects++;
                    this._hello(f);
                    resolve(this);
                } else this._frame(f);
            });
            ws.on('close', (code) => {
                if (ws !== this.ws) return;
                this.hello = null;
                if (!settled) return fail(new Error(`${this.user}: closed with ${code} before hello`));
                this.closes.push(code);
                if (this.reconnect) this._reconnect();
            });
        });
    }

    _hello(f) {
        if (this.epoch !== null && f.epoch !== this.epoch) this.problems.push(`epoch changed from ${this.epoch} to ${f.epoch}`);
        if (this.epoch === null) this.epoch = f.epoch;
        this.hello = f;
        if (this.connects > 1) this.ws.send(encode({ kind: 'sync', after: this.lastSeq, epoch: this.epoch }));
        for (const [cid, m] of this.outbox) if (m.id === null) this._transmit(cid, m);
    }

    _frame(f) {
        if (f.kind === 'text') {
            this.texts.push(f);
            if (f.seq > this.lastSeq) this.lastSeq = f.seq;
        } else if (f.kind === 'ack') {
            const m = this.outbox.get(f.cid);
            if (!m) return this.problems.push(`ack for unknown cid ${f.cid}`);
            if (m.id !== null && m.id !== f.id) this.problems.push(`cid ${f.cid} acked with ids ${m.id} and ${f.id}`);
            m.id = f.id;
            if (f.seq > this.lastSeq) this.lastSeq = f.seq;
        } else if (f.kind === 'error') {
            const m = f.cid && this.outbox.get(f.cid);
            if (m && f.code === 'unavailable') m.retryAt = Date.now() + 300;
            else this.problems.push(`error ${f.code}: ${f.message}`);
        } else if (f.kind === 'sync') {
            this.syncs.push(f);
        }
    }

    async _reconnect() {
        while (this.reconnect && !this.isOpen) {
            try {
                await this.open();
                return;
            } catch {
                await sleep(250);
            }
        }
    }

    _transmit(cid, m) {
        if (!this.isOpen) return;
        m.tries++;
        m.sentAt = Date.now();
        m.retryAt = 0;
        this.ws.send(encode({ kind: 'text', to: m.to, data: m.data, cid }));
    }

    _retransmit() {
        const now = Date.now();
        for (const [cid, m] of this.outbox)
            if (m.id === null && m.tries > 0 && ((m.retryAt && now >= m.retryAt) || now - m.sentAt > 3000)) this._transmit(cid, m);
    }

    send(to, data, cid) {
        const m = { to, data, id: null, tries: 0, sentAt: 0, retryAt: 0 };
        this.outbox.set(cid, m);
        if (this.isOpen) this._transmit(cid, m);
        else m.retryAt = Date.now(); // sent as soon as a socket is open
        return m;
    }

    acked(prefix) {
        return [...this.outbox].filter(([cid, m]) => cid.startsWith(prefix) && m.id !== null).map(([cid, m]) => ({ cid, ...m }));
    }

    waitAcked(prefix, timeoutMs = 30000) {
        const all = () => [...this.outbox].filter(([cid]) => cid.startsWith(prefix));
        return until(
            () => all().every(([, m]) => m.id !== null),
            timeoutMs,
            `${this.user}: every ${prefix}* acked (${all().filter(([, m]) => m.id === null).length} not yet)`,
            50,
        );
    }

    // the first frame from index `since` on that matches
    next(pred, timeoutMs = 8000, what = 'frame', since = 0) {
        const start = since;
        return until(
            () => {
                const i = this.frames.findIndex((f, k) => k >= start && pred(f));
                return i >= 0 ? this.frames[i] : null;
            },
            timeoutMs,
            `${this.user}: ${what}`,
            25,
        );
    }

    // the session id(s) of this user in Redis: "gwid#conn"
    async sessions() {
        return lines(await redis('SMEMBERS', `parley:{u:${this.user}}:sessions`));
    }
    async gateway() {
        const s = await this.sessions();
        assert(s.length === 1, `${this.user}: expected one session, Redis has ${JSON.stringify(s)}`);
        return s[0].slice(0, s[0].lastIndexOf('#'));
    }

    terminate() {
        this.reconnect = false;
        clearInterval(this.pump);
        if (this.ws) this.ws.terminate();
    }

    async close() {
        this.reconnect = false;
        clearInterval(this.pump);
        if (this.ws && this.ws.readyState === WebSocket.OPEN) {
            const closed = new Promise((r) => this.ws.once('close', r));
            this.ws.close(1000);
            await withTimeout(closed, 5000, `${this.user}: close`).catch(() => this.ws.terminate());
        }
    }
}

// Every text `sender` had acknowledged under `prefix` reached `rcv` (at least
// once: duplicates are allowed by the contract, the client drops them by id),
// nothing it received under that prefix was never acknowledged, each cid got
// one id. Returns a short summary.
function checkDelivered(rcv, sender, prefix) {
    const acked = sender.acked(prefix);
    const sentCount = [...sender.outbox.keys()].filter((c) => c.startsWith(prefix)).length;
    assert(acked.length === sentCount, `${sender.user}: ${sentCount - acked.length} of ${sentCount} ${prefix}* never acked`);
    const ackedIds = new Set(acked.map((m) => m.id));
    assert(ackedIds.size === acked.length, `${sender.user}: two cids share an id`);
    const got = new Map();
    for (const f of rcv.texts)
        if (f.from === sender.user && f.cid && f.cid.startsWith(prefix)) {
            got.set(f.id, (got.get(f.id) || 0) + 1);
            const m = sender.outbox.get(f.cid);
            assert(m && m.id === f.id && m.data === f.data, `${rcv.user} got ${f.cid} as id ${f.id} / ${JSON.stringify(f.data)}, acked as ${m && m.id}`);
        }
    const missing = acked.filter((m) => !got.has(m.id));
    assert(
        missing.length === 0,
        `${rcv.user} never received ${missing.length} acked messages: ${missing
            .slice(0, 10)
            .map((m) => `${m.cid}=${m.id}`)
            .join(' ')}`,
    );
    const phantom = [...got.keys()].filter((id) => !ackedIds.has(id));
    assert(phantom.length === 0, `${rcv.user} received ids that were never acked: ${phantom.join(' ')}`);
    const dups = [...got.values()].reduce((a, n) => a + n - 1, 0);
    const retried = acked.filter((m) => m.tries > 1).length;
    return `${acked.length} acked, all received by ${rcv.user} (${dups} duplicates dropped by id; ${retried} sends retried)`;
}

// ------------------------------------------------------------ the tests

const names = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'gina'].map((n) => `${n}${RUN}`.slice(0, 32));
const [ALICE, BOB, CAROL, DAVE, ERIN, FRANK, GINA] = names;
const tokens = {};
const peers = {};
const connect = async (user, reconnect = true) => {
    const p = new Peer(user, tokens[user]);
    await p.open();
    p.reconnect = reconnect;
    peers[user] = p;
    return p;
};

async function main() {
    await step('load balancer: /healthz 200, haproxy sees every gateway UP', async () => {
        await until(async () => (await api('/healthz')).status === 200, 60000, 'GET /healthz through the LB answers 200');
        const up = await until(
            async () => {
                const u = await upServers();
                return u.length === GATEWAYS ? u : null;
            },
            60000,
            `${GATEWAYS} gateway slots UP in haproxy`,
        );
        return `${up.length} UP: ${up.map((s) => `${s.name} (${s.check})`).join(' ')}`;
    });

    const webSha = process.env.PARLEY_WEB_INDEX_SHA256 || '';
    await step(
        webSha ? 'the web client built on the host is served at / through the LB' : 'the placeholder page is served at / (no web client built)',
        async () => {
            const r = await api('/');
            assert(r.status === 200 && r.type.startsWith('text/html'), `GET / answered ${r.status} ${r.type}`);
            if (!webSha) {
                assert(/web client is not built/.test(r.text), `GET / is not the placeholder page: ${r.text.slice(0, 200)}`);
                return;
            }
            const sha = createHash('sha256').update(r.text).digest('hex');
            assert(sha === webSha, `GET / is not web/dist/index.html (sha256 ${sha}): ${r.text.slice(0, 200)}`);
            const assets = [...r.text.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
            assert(assets.length > 0, 'index.html references no /assets/ file');
            for (const a of assets) {
                const res = await fetch(BASE + a);
                const body = await res.arrayBuffer();
                assert(res.status === 200 && body.byteLength > 0, `GET ${a}: ${res.status}, ${body.byteLength} bytes`);
            }
            return `index.html and ${assets.length} assets`;
        },
    );

    await step('register and login through the LB (bad password 401, taken name 409)', async () => {
        for (const n of names) {
            const r = await api('/api/register', { body: { username: n, password: PASSWORD } });
            assert(r.status === 201 && r.json && r.json.token, `register ${n}: ${r.status} ${r.text}`);
            tokens[n] = r.json.token;
        }
        const again = await api('/api/register', { body: { username: ALICE, password: PASSWORD } });
        assert(again.status === 409, `second register of ${ALICE}: ${again.status}`);
        const bad = await api('/api/login', { body: { username: ALICE, password: 'wrong password' } });
        assert(bad.status === 401, `login with a wrong password: ${bad.status}`);
        const ok = await api('/api/login', { body: { username: BOB, password: PASSWORD } });
        assert(ok.status === 200 && ok.json.username === BOB, `login ${BOB}: ${ok.status} ${ok.text}`);
        tokens[BOB] = ok.json.token;
    });

    await step('the token secret comes from the env file: the repository default is refused', async () => {
        const mint = (secret, user, exp) => `${user}:${exp}:${createHmac('sha256', secret).update(`${user}:${exp}`).digest('hex')}`;
        const exp = Math.floor(Date.now() / 1000) + 3600;
        const { PARLEY_TEST_SECRET: mine, PARLEY_DEFAULT_SECRET: def } = process.env;
        assert(mine && def && mine !== def, 'PARLEY_TEST_SECRET and PARLEY_DEFAULT_SECRET must be set and differ');
        const forged = await api(`/api/users?q=${ALICE}`, { token: mint(def, ALICE, exp) });
        assert(forged.status === 401, `a token signed with the default secret: ${forged.status}`);
        const good = await api(`/api/users?q=${ALICE}`, { token: mint(mine, ALICE, exp) });
        assert(good.status === 200, `a token signed with the env file's secret: ${good.status} ${good.text}`);
    });

    await step(`three sessions land on ${GATEWAYS} different gateways (leastconn)`, async () => {
        for (const n of [ALICE, BOB, CAROL]) await connect(n);
        const gws = await Promise.all([ALICE, BOB, CAROL].map((n) => peers[n].gateway()));
        const registered = lines(await redis('SMEMBERS', 'parley:gateways'));
        for (const g of gws) assert(registered.includes(g), `gateway ${g} not in parley:gateways ${JSON.stringify(registered)}`);
        assert(new Set(gws).size === Math.min(3, GATEWAYS), `sessions on ${JSON.stringify(gws)}`);
        return gws.join(' ');
    });

    await step('presence across gateways: hello lists contacts, online/offline reach other gateways', async () => {
        const a = peers[ALICE];
        const listed = Object.fromEntries(a.hello.users.map((u) => [u.username, u.online]));
        for (const n of [BOB, CAROL, DAVE]) assert(n in listed, `${ALICE}'s hello lacks ${n}: ${JSON.stringify(a.hello.users)}`);
        assert(listed[DAVE] === false, `${DAVE} listed online before connecting`);
        await a
            .next((f) => f.kind === 'online' && f.from === BOB, 8000, `online ${BOB}`)
            .catch(() => {
                // bob may have connected before alice's presence subscription: his
                // state is then in alice's hello instead
                assert(listed[BOB] === true, `${BOB} neither online in hello nor announced`);
            });
        const d = await connect(DAVE, false);
        const dgw = await d.gateway();
        await a.next((f) => f.kind === 'online' && f.from === DAVE, 8000, `online ${DAVE}`);
        const users = await api(`/api/users?q=${DAVE}`, { token: tokens[ALICE] });
        assert(users.status === 200 && users.json.some((u) => u.username === DAVE && u.online === true), `/api/users: ${users.text}`);
        await d.close();
        await a.next((f) => f.kind === 'offline' && f.from === DAVE, 8000, `offline ${DAVE}`);
        return `${DAVE} was on ${dgw}`;
    });

    await step('chat across gateways: ack, delivery, reply', async () => {
        const [a, b] = [peers[ALICE], peers[BOB]];
        assert((await a.gateway()) !== (await b.gateway()), 'alice and bob share a gateway');
        a.send(BOB, 'hello from alice', 'chat-1');
        await a.waitAcked('chat-1', 8000);
        const t = await b.next((f) => f.kind === 'text' && f.cid === 'chat-1', 8000, 'chat-1 delivered');
        assert(t.from === ALICE && t.to === BOB && t.data === 'hello from alice' && t.id === a.outbox.get('chat-1').id, JSON.stringify(t));
        b.send(ALICE, 'hi alice, bob here', 'chat-2');
        await b.waitAcked('chat-2', 8000);
        const r = await a.next((f) => f.kind === 'text' && f.cid === 'chat-2', 8000, 'chat-2 delivered');
        assert(r.from === BOB && r.id > t.id, `reply ${JSON.stringify(r)}`);
    });

    await step('a group across three gateways: create, fan-out, history', async () => {
        const [a, b, c] = [peers[ALICE], peers[BOB], peers[CAROL]];
        const name = `#crew${RUN}`.slice(0, 33);
        const since = [a, b, c].map((p) => p.frames.length);
        c.ws.send(encode({ kind: 'group', op: 'create', name, members: [ALICE, BOB] }));
        for (const [i, p] of [a, b, c].entries()) {
            const g = await p.next((f) => f.kind === 'group' && f.name === name, 8000, `group frame for ${name}`, since[i]);
            assert(g.op === 'create' && g.by === CAROL && [ALICE, BOB, CAROL].every((n) => g.members.includes(n)), JSON.stringify(g));
        }
        a.send(name, 'hello crew', 'grp-1');
        await a.waitAcked('grp-1', 8000);
        const id = a.outbox.get('grp-1').id;
        for (const p of [b, c]) {
            const t = await p.next((f) => f.kind === 'text' && f.cid === 'grp-1', 8000, 'group text');
            assert(t.id === id && t.from === ALICE && t.to === name && t.data === 'hello crew', JSON.stringify(t));
        }
        const hsince = b.frames.length;
        b.ws.send(encode({ kind: 'history', with: name, limit: 10 }));
        const h = await b.next((f) => f.kind === 'history', 8000, 'history answer', hsince);
        assert(h.with === name && h.messages.some((m) => m.id === id && m.data === 'hello crew'), JSON.stringify(h));
        return `${name}: message ${id} reached members on ${new Set(await Promise.all([b, c].map((p) => p.gateway()))).size} other gateways`;
    });

    await step('offline delivery: messages to a user without a session arrive after hello', async () => {
        const a = peers[ALICE];
        for (let i = 0; i < 5; i++) a.send(ERIN, `offline ${i}`, `off-${i}`);
        await a.waitAcked('off-', 10000);
        const e = await connect(ERIN, false);
        await until(() => e.texts.length >= 5, 8000, `${ERIN} got 5 offline messages`);
        const got = e.texts.map((f) => f.data);
        assert(JSON.stringify(got) === JSON.stringify([0, 1, 2, 3, 4].map((i) => `offline ${i}`)), `offline push: ${JSON.stringify(got)}`);
        assert(e.frames[0].kind === 'hello', 'first frame is not hello');
        await e.close();
        return `on ${ERIN}'s arrival: ${got.length} texts, in order`;
    });

    await step('monitoring: the documented redis-cli commands on the live stack', async () => {
        const a = peers[ALICE];
        // online users
        const online = lines(await redis('SMEMBERS', 'parley:online'));
        for (const n of [ALICE, BOB, CAROL]) assert(online.includes(n), `SMEMBERS parley:online lacks ${n}: ${online}`);
        assert(!online.includes(ERIN), `${ERIN} closed but still in parley:online`);
        const cliOnline = await host('parley', 'online');
        assert(cliOnline.includes(ALICE) && cliOnline.includes(BOB), `parley online: ${cliOnline}`);
        // a user's inbox (raw msgpack: its strings are readable) and decoded by the CLI
        const inbox = await redis('LRANGE', `parley:{u:${ERIN}}:inbox`, '0', '-1');
        for (let i = 0; i < 5; i++) assert(inbox.includes(`offline ${i}`), `LRANGE inbox lacks "offline ${i}"`);
        assert(Number((await redis('LLEN', `parley:{u:${ERIN}}:inbox`)).trim()) === 5, 'LLEN inbox is not 5');
        const cliInbox = await host('parley', 'inbox', ERIN);
        assert(cliInbox.includes('offline 4') && cliInbox.includes(ALICE), `parley inbox: ${cliInbox}`);
        // channels and their subscribers
        const chans = lines(await redis('PUBSUB', 'CHANNELS', 'parley:*'));
        const rt = chans.filter((c) => /^parley:rt:\d+$/.test(c));
        assert(rt.length === 64, `${rt.length} router slot channels, expected 64`);
        const gws = lines(await redis('SMEMBERS', 'parley:gateways'));
        assert(gws.length === GATEWAYS, `parley:gateways: ${gws}`);
        for (const g of gws) assert(chans.includes(`parley:gw:${g}`), `no channel parley:gw:${g} in ${chans}`);
        assert(chans.includes(`parley:presence:${ALICE}`), `no presence channel of ${ALICE}`);
        const numsub = lines(await redis('PUBSUB', 'NUMSUB', 'parley:rt:0', `parley:gw:${gws[0]}`, `parley:presence:${ALICE}`));
        assert(numsub[0] === 'parley:rt:0' && numsub[1] === '1', `NUMSUB parley:rt:0: ${numsub}`);
        assert(numsub[3] === '1', `NUMSUB of a gateway channel: ${numsub}`);
        assert(Number(numsub[5]) >= 1, `NUMSUB of ${ALICE}'s presence: ${numsub}`);
        const clients = await redis('CLIENT', 'LIST');
        assert((clients.match(/name=parley-gw:/g) || []).length === 2 * GATEWAYS, 'CLIENT LIST: not two named connections per gateway');
        // throughput: INFO stats before and after some traffic, MONITOR during it
        const stat = (out, k) => Number((out.match(new RegExp(`^${k}:(\\d+)`, 'm')) || [])[1]);
        const before = await redis('INFO', 'stats');
        assert(!Number.isNaN(stat(before, 'instantaneous_ops_per_sec')), 'INFO stats has no instantaneous_ops_per_sec');
        let n = 0;
        const mark = `monitor-probe-${RUN}`;
        const traffic = setInterval(() => a.send(BOB, `${mark} ${n}`, `mon-${n++}`), 100);
        let mon, statOut;
        try {
            mon = await host('redis-cli-1s', 'MONITOR');
            statOut = await host('redis-cli-1s', '--stat', '-i', '0.2');
        } finally {
            clearInterval(traffic);
        }
        await a.waitAcked('mon-', 10000);
        const after = await redis('INFO', 'stats');
        const delta = stat(after, 'total_commands_processed') - stat(before, 'total_commands_processed');
        assert(delta >= 2 * n, `total_commands_processed grew by ${delta} over ${n} messages`);
        const monLines = lines(mon);
        assert(
            monLines.some((l) => l.includes('"FCALL"') && l.includes(mark)),
            `MONITOR showed no send script carrying ${mark}: ${monLines.slice(0, 5).join(' | ')}`,
        );
        assert(
            monLines.some((l) => l.includes('"PUBLISH"') && l.includes('parley:rt:')),
            'MONITOR showed no PUBLISH to a router channel',
        );
        // redis-cli --stat: a header, then one line per interval (keys, mem, clients, requests)
        const statLines = lines(statOut);
        assert(/keys\s+mem\s+clients/.test(statLines[1] || statLines[0]), `--stat header: ${statLines.slice(0, 2)}`);
        assert(statLines.filter((l) => /^\d+\s+\S+\s+\d+\s+\d+\s+\d+ \(\+\d+\)/.test(l)).length >= 2, `--stat lines: ${statLines.join(' | ')}`);
        // the admin CLI's view of the processes
        const gwsCli = await host('parley', 'gateways');
        for (const g of gws) assert(new RegExp(`^${g} alive ttl=\\d+ms sessions=\\d+$`, 'm').test(gwsCli), `parley gateways lacks ${g}: ${gwsCli}`);
        const routersCli = await host('parley', 'routers');
        assert(/slots=64 \[0-63\]/.test(routersCli), `parley routers: ${routersCli}`);
        return `${online.length} online, ${chans.length} channels, MONITOR: ${monLines.length} lines in 1 s, +${delta} commands for ${n} messages`;
    });

    await step("every 'look at it' command of the README's Redis key table answers on the live stack", async () => {
        const [a, b] = [peers[ALICE], peers[BOB]];
        const group = `#crew${RUN}`.slice(0, 33);
        const gw = await a.gateway();
        // a read position for alice (the `read` hash), then a message she has not
        // read (`unread`), an open group (`parley:groups`)
        const lastFromBob = b.outbox.get('chat-2').id;
        a.ws.send(encode({ kind: 'read', with: BOB, upto: lastFromBob }));
        const open = `#open${RUN}`.slice(0, 33);
        const since = a.frames.length;
        a.ws.send(encode({ kind: 'group', op: 'create', name: open, members: [BOB], open: true }));
        await a.next((f) => f.kind === 'group' && f.name === open, 8000, 'open group created', since);
        await until(async () => (await redis('HGET', `parley:{u:${ALICE}}:read`, BOB)).trim() === String(lastFromBob), 5000, 'read position stored');
        b.send(ALICE, 'one more, unread', 'chat-3'); // something unread for alice
        await b.waitAcked('chat-3', 8000);
        const readme = await host('readme');
        const subst = (cmd) => cmd.replace(/alice/g, ALICE).replace(/bob/g, BOB).replace(/#team/g, group).replace(/gw1/g, gw);
        const cmds = [];
        for (const row of readme.split('\n').filter((l) => l.startsWith('| `parley:'))) {
            const cmd = [...row.matchAll(/`([^`]+)`/g)].map((m) => m[1]).find((c) => /^[A-Z]+ parley:/.test(c));
            if (cmd) cmds.push(subst(cmd));
        }
        assert(cmds.length >= 15, `only ${cmds.length} commands found in the README's key table`);
        const empty = [];
        for (const cmd of cmds) {
            const out = (await redis(...cmd.split(' '))).trim();
            assert(!/^(ERR|WRONGTYPE|\(error\))/.test(out), `${cmd}: ${out}`);
            if (out === '' || (cmd.startsWith('PTTL') && !(Number(out) > 0))) empty.push(cmd);
        }
        assert(empty.length === 0, `empty or expired on a stack in use: ${empty.join('; ')}`);
        return `${cmds.length} commands`;
    });

    let stopped = null;
    await step('stop a gateway mid-conversation: its clients reconnect through the LB, nothing lost', async () => {
        const [a, b, c] = [peers[ALICE], peers[BOB], peers[CAROL]];
        const bgw = await b.gateway();
        assert((await a.gateway()) !== bgw && (await c.gateway()) !== bgw, "alice or carol shares bob's gateway");
        // a client on bob's gateway that stops reading: the gateway's drain then
        // waits for its close handshake (up to PARLEY_DRAIN_TIMEOUT, 5 s), which
        // leaves time to watch the load balancer while the gateway drains
        let stuck = null;
        for (let i = 0; i < 8 && !stuck; i++) {
            const f = new Peer(FRANK, tokens[FRANK]);
            await f.open();
            const s = await f.sessions();
            if (s.some((x) => x.startsWith(`${bgw}#`)) && s.length === 1) stuck = f;
            else await f.close();
            if (!stuck) await until(async () => (await f.sessions()).length === 0, 5000, `${FRANK}'s sessions closed`);
        }
        assert(stuck, `no session of ${FRANK} landed on ${bgw} in 8 tries`);
        clearInterval(stuck.pump);
        stuck.ws._socket.pause();
        // while it drains, from the moment it is told to stop: requests and new
        // sessions through the LB keep succeeding (the draining gateway answers
        // 503 on /healthz and /ws; haproxy retries those elsewhere and takes it
        // out on its failed checks, before the process is gone)
        let done = false;
        const probe = { http: 0, ws: 0, failed: [], outWhileDraining: false };
        const probeDrain = async () => {
            for (let k = 0; !done; k++) {
                const r = await api('/healthz').catch((e) => ({ status: e.message }));
                if (r.status === 200) probe.http++;
                else probe.failed.push(`GET /healthz: ${r.status}`);
                if (k % 5 === 0) {
                    const g = new Peer(GINA, tokens[GINA]);
                    try {
                        await g.open(5000);
                        probe.ws++;
                    } catch (e) {
                        probe.failed.push(e.message);
                    }
                    await g.close();
                    if (!done && (await upServers()).length === GATEWAYS - 1) probe.outWhileDraining = true;
                }
                await sleep(20);
            }
        };
        let stopping = null;
        let probing = null;
        const N = 60;
        for (let i = 0; i < N; i++) {
            a.send(BOB, `a2b ${i}`, `a2b-${i}`); // bob receives
            b.send(CAROL, `b2c ${i}`, `b2c-${i}`); // bob sends
            if (i === 15) {
                stopping = host('stop-gateway', bgw).finally(() => (done = true));
                probing = probeDrain();
            }
            await sleep(50);
        }
        stopped = await stopping;
        await probing;
        assert(
            probe.failed.length === 0,
            `${probe.failed.length} requests/sessions failed through the LB while a gateway drained: ${probe.failed.slice(0, 3)}`,
        );
        assert(probe.ws > 0, 'the gateway stopped before any new session was tried during its drain');
        assert(probe.outWhileDraining, 'haproxy did not take the gateway out while it was draining');
        await a.waitAcked('a2b-', 30000);
        await b.waitAcked('b2c-', 30000);
        await until(() => b.isOpen, 20000, 'bob reconnected');
        await until(() => b.syncs.length > 0, 10000, 'bob got the end of his sync replay');
        assert(
            b.syncs.every((s) => s.recovered === true),
            `sync not recovered: ${JSON.stringify(b.syncs)}`,
        );
        assert(b.closes.includes(1001), `bob's socket closed with ${b.closes}, not 1001`);
        const nbgw = await b.gateway();
        assert(nbgw !== bgw, `bob reconnected to the stopped gateway ${bgw}`);
        let r1, r2;
        await until(
            () => {
                r1 = checkDelivered(b, a, 'a2b-');
                r2 = checkDelivered(c, b, 'b2c-');
                return true;
            },
            10000,
            'deliveries complete',
        );
        for (const p of [a, b, c]) assert(p.problems.length === 0, `${p.user}: ${p.problems.join('; ')}`);
        // the load balancer took the stopped gateway out
        await until(async () => (await upServers()).length === GATEWAYS - 1, 10000, `${GATEWAYS - 1} gateways UP in haproxy`);
        stuck.terminate();
        return `stopped ${stopped.trim()} (${bgw}); during its drain ${probe.http} GET /healthz and ${probe.ws} new sessions through the LB all succeeded; bob back on ${nbgw}; alice->bob ${r1}; bob->carol ${r2}; LB: ${GATEWAYS - 1} UP`;
    });

    await step('the stopped gateway started again rejoins the LB (DNS discovery)', async () => {
        assert(stopped, 'no gateway was stopped');
        await host('start', stopped.trim().split(' ')[0]);
        const up = await until(
            async () => {
                const u = await upServers();
                return u.length === GATEWAYS ? u : null;
            },
            60000,
            `${GATEWAYS} gateways UP again`,
        );
        const z = await connect(DAVE, false);
        const zgw = await z.gateway();
        await z.close();
        return `${up.length} UP; a new session landed on ${zgw}`;
    });

    await step('kill -9 a gateway mid-conversation: clients reconnect, retry, nothing lost; the restart policy brings it back', async () => {
        const [a, c] = [peers[ALICE], peers[CAROL]];
        const cgw = await c.gateway();
        assert((await a.gateway()) !== cgw, 'alice and carol share a gateway');
        let crashing = null;
        for (let i = 0; i < 60; i++) {
            a.send(CAROL, `a2c ${i}`, `a2c-${i}`); // carol receives
            c.send(ALICE, `c2a ${i}`, `c2a-${i}`); // carol sends
            if (i === 15) crashing = host('crash-gateway', cgw);
            await sleep(50);
        }
        const crashed = await crashing;
        await a.waitAcked('a2c-', 30000);
        await c.waitAcked('c2a-', 30000);
        await until(() => c.isOpen, 20000, 'carol reconnected');
        await until(() => c.syncs.length > 0, 10000, 'carol got the end of her sync replay');
        assert(
            c.syncs.every((s) => s.recovered === true),
            `sync not recovered: ${JSON.stringify(c.syncs)}`,
        );
        assert(c.closes.length > 0 && !c.closes.includes(1001), `carol's socket closes: ${c.closes} (expected an abnormal close, not a drain)`);
        let r1, r2;
        await until(
            () => {
                r1 = checkDelivered(c, a, 'a2c-');
                r2 = checkDelivered(a, c, 'c2a-');
                return true;
            },
            10000,
            'deliveries complete',
        );
        for (const p of [a, c]) assert(p.problems.length === 0, `${p.user}: ${p.problems.join('; ')}`);
        // restart: unless-stopped brings the crashed container back, the LB takes it in again
        const up = await until(
            async () => {
                const u = await upServers();
                return u.length === GATEWAYS ? u : null;
            },
            60000,
            `${GATEWAYS} gateways UP after the crash`,
        );
        // the dead process's sessions were closed (reaper or the restarted gateway's own cleanup)
        await until(async () => (await c.sessions()).length === 1, 20000, `${CAROL} has exactly one session`);
        const ngw = await c.gateway();
        return `crashed ${crashed.trim()} (${cgw}), carol closed with ${c.closes.at(-1)}, back on ${ngw}; alice->carol ${r1}; carol->alice ${r2}; ${up.length} UP again`;
    });

    await step('restart the redis container: service recovers, nothing acked is lost', async () => {
        const [a, b] = [peers[ALICE], peers[BOB]];
        for (let i = 0; i < 20; i++) a.send(BOB, `pre ${i}`, `pre-${i}`);
        await a.waitAcked('pre-', 10000);
        let restarting = null;
        let sawUnavailable = false;
        const t0 = Date.now();
        for (let i = 0; i < 60; i++) {
            a.send(BOB, `rr ${i}`, `rr-${i}`);
            if (i === 5) restarting = host('restart-redis');
            if (a.frames.some((f) => f.kind === 'error' && f.code === 'unavailable')) sawUnavailable = true;
            await sleep(50);
        }
        await restarting;
        const restartedAfter = Date.now() - t0;
        await until(async () => (await api('/healthz')).status === 200, 30000, '/healthz 200 again');
        const up = await until(
            async () => {
                const u = await upServers();
                return u.length === GATEWAYS ? u : null;
            },
            30000,
            'every gateway UP after the restart',
        );
        await a.waitAcked('rr-', 40000);
        await until(() => a.isOpen && b.isOpen, 20000, 'alice and bob connected');
        let r1, r2;
        await until(
            () => {
                r1 = checkDelivered(b, a, 'pre-');
                r2 = checkDelivered(b, a, 'rr-');
                return true;
            },
            20000,
            'deliveries complete',
        );
        // durable: every acked text is in bob's inbox in the restarted Redis
        const inbox = await redis('LRANGE', `parley:{u:${BOB}}:inbox`, '0', '-1');
        const lost = [...a.acked('pre-'), ...a.acked('rr-')].filter((m) => !inbox.includes(m.data));
        assert(lost.length === 0, `acked but not in ${BOB}'s inbox after the restart: ${lost.map((m) => m.cid).join(' ')}`);
        for (const p of [a, b]) assert(p.problems.length === 0, `${p.user}: ${p.problems.join('; ')}`);
        // the epoch survived (AOF): a sync with the old epoch recovers
        const since = b.frames.length;
        b.ws.send(encode({ kind: 'sync', after: b.lastSeq, epoch: b.epoch }));
        const s = await b.next((f) => f.kind === 'sync', 8000, 'sync answer', since);
        assert(s.recovered === true, `sync after the restart: ${JSON.stringify(s)}`);
        const unavailable = a.frames.filter((f) => f.kind === 'error' && f.code === 'unavailable').length;
        return `restart took ${restartedAfter} ms; ${up.length} UP; pre: ${r1}; during: ${r2}; ${unavailable} unavailable answers${sawUnavailable ? '' : ' (none seen while sending)'}; closes alice ${a.closes} bob ${b.closes}`;
    });

    for (const p of Object.values(peers)) await p.close();
}

main()
    .catch((e) => {
        failed++;
        console.log(`not ok - e2e crashed: ${e.stack}`);
    })
    .finally(() => {
        console.log(`${passed} passed, ${failed} failed`);
        process.exit(failed ? 1 : 0);
    });
