// HTTP API and WebSocket authentication (docs/protocol.md: HTTP API,
// Transport). Cluster: redis, router, two gateways (shared secret).
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before } from 'node:test';
import { Client, healthz, login, mintToken, postRaw, register, tokenSid } from './lib/client.mjs';
import { Cluster, SECRET, waitFor } from './lib/cluster.mjs';

// gateway 1 gives a request body 1.5 s (--body-timeout), gateway 0 the default
const BODY_TIMEOUT_MS = 1500;
const cluster = new Cluster('http_auth', { gatewayArgs: (i) => (i === 1 ? ['--body-timeout', String(BODY_TIMEOUT_MS)] : []) });
before(() => cluster.start());
after(() => cluster.stop());

const PW = 'correct horse battery';
const TOKEN_RE = /^([a-z0-9_.-]{1,32}):([0-9a-f]{32}):(\d+):([0-9a-f]{64})$/;

// Opens /ws and expects the upgrade to be refused; returns the HTTP status.
async function refusedStatus(port, token, opts) {
    try {
        const c = await Client.connect(port, token, opts);
        await c.close();
        return 'upgraded (got hello)';
    } catch (e) {
        if (e.status !== undefined) return e.status;
        return `no HTTP refusal: ${e.message}`;
    }
}

cluster.test('register answers 201 with a token and the parley_token cookie', async () => {
    const name = cluster.name('reg');
    const r = await register(cluster.gw(0), name, PW);
    assert.equal(r.status, 201, `POST /api/register: expected 201, got ${r.status} ${r.text}`);
    assert.ok(r.body, `register body is not JSON: ${r.text}`);
    assert.equal(r.body.username, name, `register body.username: ${r.text}`);
    assert.equal(typeof r.body.token, 'string', `register body.token: ${r.text}`);
    const m = TOKEN_RE.exec(r.body.token);
    assert.ok(m, `token ${r.body.token} is not user:sid:exp:hex64`);
    assert.equal(m[1], name, 'token user');
    assert.ok(Number(m[3]) > Date.now() / 1000, `token exp ${m[3]} is not in the future`);
    assert.ok(r.setCookie, 'register: no Set-Cookie header');
    assert.match(r.setCookie, /(^|[;,]\s*)parley_token=[^;]+/, `Set-Cookie has no parley_token: ${r.setCookie}`);
    assert.ok(r.setCookie.includes(r.body.token), `Set-Cookie does not carry the token: ${r.setCookie}`);
});

cluster.test('register of a taken name answers 409', async () => {
    const name = cluster.name('dup');
    const first = await register(cluster.gw(0), name, PW);
    assert.equal(first.status, 201, `first register: ${first.status} ${first.text}`);
    const again = await register(cluster.gw(1), name, 'another password');
    assert.equal(again.status, 409, `second register of ${name} (other gateway): expected 409, got ${again.status} ${again.text}`);
    assert.equal(typeof again.body?.error, 'string', `409 body should be {error, message}: ${again.text}`);
    // the first password still works: the account was not overwritten
    const l = await login(cluster.gw(0), name, PW);
    assert.equal(l.status, 200, `login with the first password after the 409: ${l.status} ${l.text}`);
});

cluster.test('register with an invalid name or password answers 400', async () => {
    const cases = [
        ['name with upper case', { username: 'Alice', password: PW }],
        ['name with a space', { username: 'a b', password: PW }],
        ['empty name', { username: '', password: PW }],
        ['name of 33 chars', { username: 'a'.repeat(33), password: PW }],
        ['name with a colon', { username: 'a:b', password: PW }],
        ['group-like name', { username: '#grp', password: PW }],
        ['password of 7 bytes', { username: cluster.name('pw'), password: '1234567' }],
        ['password of 1025 bytes', { username: cluster.name('pw'), password: 'x'.repeat(1025) }],
        ['missing password', { username: cluster.name('pw') }],
        ['name not a string', { username: 42, password: PW }],
    ];
    const bad = [];
    for (const [what, body] of cases) {
        const r = await postRaw(cluster.gw(0), '/api/register', JSON.stringify(body));
        if (r.status !== 400) bad.push(`${what}: got ${r.status} ${r.text}`);
        else if (typeof r.body?.error !== 'string') bad.push(`${what}: 400 without {error}: ${r.text}`);
    }
    for (const [what, raw] of [
        ['body not JSON', 'username=x&password=y'],
        ['body a JSON array', '["a","b"]'],
        ['empty body', ''],
    ]) {
        const r = await postRaw(cluster.gw(0), '/api/register', raw);
        if (r.status !== 400) bad.push(`${what}: got ${r.status} ${r.text}`);
    }
    assert.deepEqual(bad, [], `expected 400 for every invalid register:\n${bad.join('\n')}`);
    // boundary values are accepted
    const ok32 = await register(cluster.gw(0), 'z'.repeat(31) + '9', '12345678');
    assert.equal(ok32.status, 201, `32-char name with an 8-byte password: expected 201, got ${ok32.status} ${ok32.text}`);
});

cluster.test('login with the right password answers 200 with a usable token and cookie', async () => {
    const name = cluster.name('login');
    assert.equal((await register(cluster.gw(0), name, PW)).status, 201);
    const r = await login(cluster.gw(1), name, PW);
    assert.equal(r.status, 200, `POST /api/login: expected 200, got ${r.status} ${r.text}`);
    assert.equal(r.body?.username, name, `login body: ${r.text}`);
    assert.match(r.body?.token ?? '', TOKEN_RE, `login token: ${r.text}`);
    assert.match(r.setCookie ?? '', /parley_token=/, `login Set-Cookie: ${r.setCookie}`);
    const c = await Client.connect(cluster.gw(0), r.body.token);
    assert.equal(c.hello.user, name, `hello.user with the login token: ${JSON.stringify(c.hello)}`);
});

cluster.test('login with a wrong password or unknown user answers 401', async () => {
    const name = cluster.name('wrong');
    assert.equal((await register(cluster.gw(0), name, PW)).status, 201);
    const r = await login(cluster.gw(0), name, 'not the password');
    assert.equal(r.status, 401, `wrong password: expected 401, got ${r.status} ${r.text}`);
    assert.equal(r.setCookie, null, `401 must not set a cookie: ${r.setCookie}`);
    assert.equal(r.body?.token, undefined, `401 must not carry a token: ${r.text}`);
    const u = await login(cluster.gw(0), cluster.name('ghost'), PW);
    assert.equal(u.status, 401, `unknown user: expected 401, got ${u.status} ${u.text}`);
});

cluster.test('/ws accepts the token in the parley_token cookie', async () => {
    const name = cluster.name('cookie');
    const r = await register(cluster.gw(0), name, PW);
    assert.equal(r.status, 201);
    const c = await Client.connect(cluster.gw(1), r.body.token, { cookie: true });
    assert.equal(c.hello.user, name, `hello via cookie: ${JSON.stringify(c.hello)}`);
});

cluster.test('/ws accepts a token minted with the shared secret (control for the refusals)', async () => {
    const name = cluster.name('mint');
    const r = await register(cluster.gw(0), name, PW);
    assert.equal(r.status, 201);
    // for the session register made (a token names one), with another expiry
    const tok = mintToken(SECRET, name, Math.floor(Date.now() / 1000) + 3600, tokenSid(r.body.token));
    assert.notEqual(tok, r.body.token);
    const c = await Client.connect(cluster.gw(1), tok);
    assert.equal(c.hello.user, name);
    assert.equal(typeof c.hello.epoch, 'string', `hello.epoch: ${JSON.stringify(c.hello)}`);
    assert.ok(Number.isInteger(c.hello.seq) && c.hello.seq >= 0, `hello.seq: ${JSON.stringify(c.hello)}`);
    assert.ok(Array.isArray(c.hello.users), `hello.users: ${JSON.stringify(c.hello)}`);
});

cluster.test('/ws without a token is refused with HTTP 401 before the upgrade', async () => {
    assert.equal(await refusedStatus(cluster.gw(0), null), 401);
    assert.equal(await refusedStatus(cluster.gw(0), ''), 401, 'empty ?token=');
});

cluster.test('/ws with a forged token is refused with HTTP 401', async () => {
    const name = cluster.name('forged');
    assert.equal((await register(cluster.gw(0), name, PW)).status, 201);
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const forged = mintToken('not-the-secret', name, exp);
    assert.equal(await refusedStatus(cluster.gw(0), forged), 401, 'token signed with another secret');
    assert.equal(await refusedStatus(cluster.gw(1), forged, { cookie: true }), 401, 'forged token in the cookie');
    // a valid signature for another user, with the name swapped
    const other = mintToken(SECRET, cluster.name('other'), exp);
    const swapped = other.replace(/^[^:]+/, name);
    assert.equal(await refusedStatus(cluster.gw(0), swapped), 401, 'user name swapped in a signed token');
    assert.equal(await refusedStatus(cluster.gw(0), 'garbage'), 401, 'malformed token');
});

cluster.test('/ws with an expired token is refused with HTTP 401', async () => {
    const name = cluster.name('expired');
    assert.equal((await register(cluster.gw(0), name, PW)).status, 201);
    const expired = mintToken(SECRET, name, Math.floor(Date.now() / 1000) - 10);
    assert.equal(await refusedStatus(cluster.gw(0), expired), 401, 'expired token in the query');
    assert.equal(await refusedStatus(cluster.gw(1), expired, { cookie: true }), 401, 'expired token in the cookie');
});

cluster.test('logout answers 204 and clears the parley_token cookie', async () => {
    const res = await fetch(`http://127.0.0.1:${cluster.gw(0)}/api/logout`, { method: 'POST' });
    assert.equal(res.status, 204, `POST /api/logout: expected 204, got ${res.status}`);
    const sc = res.headers.get('set-cookie') || '';
    assert.match(
        sc,
        /parley_token=;|parley_token=""|parley_token=[^;]*;.*(Max-Age=0|Expires=Thu, 01 Jan 1970)/i,
        `logout must clear the cookie, Set-Cookie: ${sc}`,
    );
});

cluster.test('GET /api/users?q=PREFIX lists matching users with presence (authenticated)', async () => {
    const names = ['srch1', 'srch2', 'srch3'];
    const toks = {};
    for (const n of names) toks[n] = (await register(cluster.gw(0), n, PW)).body.token;
    await Client.connect(cluster.gw(1), toks.srch2);
    const url = `http://127.0.0.1:${cluster.gw(0)}/api/users?q=srch`;
    const res = await fetch(url, { headers: { cookie: `parley_token=${toks.srch1}` } });
    assert.equal(res.status, 200, `GET /api/users with the cookie: ${res.status} ${await res.clone().text()}`);
    const list = await res.json();
    assert.ok(Array.isArray(list), `body must be an array: ${JSON.stringify(list)}`);
    const got = Object.fromEntries(list.map((u) => [u.username, u.online]));
    assert.deepEqual(
        Object.keys(got)
            .filter((n) => n.startsWith('srch'))
            .sort(),
        names,
        `users starting with srch: ${JSON.stringify(list)}`,
    );
    assert.equal(got.srch2, true, `srch2 is online: ${JSON.stringify(list)}`);
    assert.equal(got.srch3, false, `srch3 is offline: ${JSON.stringify(list)}`);
    const anon = await fetch(url);
    assert.notEqual(anon.status, 200, 'GET /api/users without a token must not answer 200');
});

cluster.test('GET /api/users returns at most 20 names', async () => {
    const tok = (await register(cluster.gw(0), 'many00', PW)).body.token;
    for (let i = 1; i < 23; i++) assert.equal((await register(cluster.gw(0), `many${String(i).padStart(2, '0')}`, PW)).status, 201);
    const res = await fetch(`http://127.0.0.1:${cluster.gw(1)}/api/users?q=many`, { headers: { cookie: `parley_token=${tok}` } });
    assert.equal(res.status, 200);
    const list = await res.json();
    assert.ok(list.length <= 20 && list.length > 0, `expected 1..20 entries, got ${list.length}`);
    assert.ok(
        list.every((u) => u.username.startsWith('many')),
        `only names starting with the prefix: ${JSON.stringify(list)}`,
    );
});

cluster.test('GET /metrics answers Prometheus text', async () => {
    const res = await fetch(`http://127.0.0.1:${cluster.gw(0)}/metrics`);
    assert.equal(res.status, 200, `GET /metrics: ${res.status}`);
    const text = await res.text();
    assert.match(text, /^# TYPE \S+ (counter|gauge|histogram|summary)$/m, `no # TYPE line in /metrics:\n${text.slice(0, 500)}`);
    assert.match(text, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+-]+$/m, `no sample line in /metrics:\n${text.slice(0, 500)}`);
});

// Redis memory as a gateway sees it (INFO memory with each heartbeat): what an
// operator watches against maxmemory (docs/deploy.md, "Redis memory")
cluster.test('GET /metrics shows Redis used_memory and maxmemory', async () => {
    const [used, max] = await Promise.all([cluster.redis('INFO', 'memory'), cluster.redis('CONFIG', 'GET', 'maxmemory')]);
    assert.ok(/used_memory:\d+/.test(String(used)), 'redis answers INFO memory');
    const sample = async () => {
        const text = await (await fetch(`http://127.0.0.1:${cluster.gw(0)}/metrics`)).text();
        const u = /^parley_gateway_redis_used_memory_bytes (\d+)$/m.exec(text);
        const m = /^parley_gateway_redis_maxmemory_bytes (\d+)$/m.exec(text);
        return u && m ? { used: Number(u[1]), max: Number(m[1]) } : null;
    };
    const s = await waitFor(sample, { timeout: 5000, what: 'the Redis memory gauges in /metrics' });
    assert.ok(s.used > 100000, `used_memory ${s.used} bytes looks like a running Redis`);
    assert.equal(s.max, Number(max[1]), 'maxmemory as Redis has it');
});

cluster.test('GET /healthz answers 200 on a healthy gateway', async () => {
    for (const i of [0, 1]) {
        const res = await fetch(`http://127.0.0.1:${cluster.gw(i)}/healthz`);
        assert.equal(res.status, 200, `gw${i + 1} /healthz`);
    }
});

function rawGet(port, path) {
    return new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path, method: 'GET', agent: false }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode, body }));
        });
        req.on('error', reject);
        req.end();
    });
}

cluster.test('GET / serves the web client from --web-root', async () => {
    const r = await rawGet(cluster.gw(0), '/');
    assert.equal(r.status, 200, `GET /: ${r.status}`);
    assert.match(r.body, /parley test/, `GET / should serve ${cluster.webRoot}/index.html: ${r.body.slice(0, 200)}`);
});

cluster.test('static files never escape --web-root (path traversal)', async () => {
    const bad = [];
    for (const p of ['/../../../../etc/passwd', '/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd', '/..%2f..%2f..%2f..%2fetc%2fpasswd', '//etc/passwd']) {
        const r = await rawGet(cluster.gw(0), p).catch((e) => ({ status: e.code, body: '' }));
        if (r.status === 200 && /root:/.test(r.body)) bad.push(`${p} served /etc/passwd`);
    }
    assert.deepEqual(bad, [], 'path traversal');
});

// Requests pipelined on one keep-alive connection: lws delivers the end of a
// body again while the next request waits behind an unanswered one; the
// route must still run once (one account lookup, one password check).
cluster.test('a login pipelined with another request on one connection is checked once', async () => {
    const name = cluster.name('pipe');
    const r = await register(cluster.gw(0), name, PW);
    assert.equal(r.status, 201, `register: ${r.status} ${r.text}`);
    const hgets = async () => {
        const stats = String(await cluster.redis('INFO', 'commandstats'));
        const m = /cmdstat_hget:calls=(\d+)/.exec(stats);
        return m ? Number(m[1]) : 0;
    };
    const before = await hgets();
    const body = JSON.stringify({ username: name, password: PW });
    const raw =
        `POST /api/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}` +
        'GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n';
    const answers = await new Promise((resolve, reject) => {
        const sock = net.connect(cluster.gw(0), '127.0.0.1', () => sock.write(raw));
        let text = '';
        const done = () => {
            sock.destroy();
            resolve(text);
        };
        sock.setEncoding('utf8');
        sock.on('data', (d) => {
            text += d;
            if ((text.match(/HTTP\/1\.1 /g) || []).length >= 2 && text.endsWith('ok')) done();
        });
        sock.on('error', reject);
        sock.setTimeout(5000, done);
    });
    assert.match(answers, /^HTTP\/1\.1 200[^]*"token"[^]*HTTP\/1\.1 200[^]*ok$/, `two answers, login then healthz: ${answers}`);
    assert.equal((await hgets()) - before, 1, 'the account was looked up once (one HGET), not once per pass over the connection');
});

// Sends raw bytes on a fresh connection; resolves with everything read until
// the server closes it (or timeoutMs), and when that was.
function rawExchange(port, chunks, { gapMs = 0, timeoutMs = 8000 } = {}) {
    return new Promise((resolve, reject) => {
        const t0 = Date.now();
        const sock = net.connect(port, '127.0.0.1');
        let text = '';
        let closed = false;
        let firstDataMs;
        sock.setEncoding('utf8');
        sock.on('data', (d) => {
            if (firstDataMs === undefined) firstDataMs = Date.now() - t0;
            text += d;
        });
        sock.on('error', (e) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? null : reject(e)));
        sock.on('close', () => {
            closed = true;
            resolve({ text, closedAfterMs: Date.now() - t0, firstDataMs });
        });
        sock.setTimeout(timeoutMs, () => sock.destroy());
        (async () => {
            for (const c of chunks) {
                if (closed) return;
                sock.write(c);
                if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
            }
        })();
    });
}

cluster.test('a body trickled a byte at a time gets 408 once --body-timeout passed; the gateway serves others meanwhile', async () => {
    const body = JSON.stringify({ username: cluster.name('slow'), password: PW });
    const head = `POST /api/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    // one byte every 300 ms: each byte restarts lws's idle timer, the whole body would take ~15 s
    const slow = rawExchange(cluster.gw(1), [head, ...body], { gapMs: 300 });
    const t0 = Date.now();
    const h = await healthz(cluster.gw(1));
    assert.equal(h, 200, 'a bystander is served while the body trickles');
    assert.ok(Date.now() - t0 < 1000, `the bystander waited ${Date.now() - t0} ms`);
    const r = await slow;
    assert.match(r.text, /^HTTP\/1\.1 408 [^]*"error":"request_timeout"/, `answer to the trickled body: ${r.text}`);
    assert.ok(
        // the test's clock and the gateway's differ by up to a millisecond or so
        r.closedAfterMs >= BODY_TIMEOUT_MS - 50 && r.closedAfterMs < BODY_TIMEOUT_MS + 3000,
        `closed after ${r.closedAfterMs} ms (deadline ${BODY_TIMEOUT_MS} ms)`,
    );
});

cluster.test(
    'a body trickled slower than the deadline (one byte, then a byte every 1.2 x the deadline) gets 408 at the deadline, not at the next byte',
    async () => {
        const body = JSON.stringify({ username: cluster.name('slower'), password: PW });
        const head = `POST /api/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
        const r = await rawExchange(cluster.gw(1), [head, ...body], { gapMs: Math.round(BODY_TIMEOUT_MS * 1.2) });
        assert.match(r.text, /^HTTP\/1\.1 408 [^]*"error":"request_timeout"/, `answer: ${r.text}`);
        assert.ok(
            r.closedAfterMs >= BODY_TIMEOUT_MS - 50 && r.closedAfterMs < BODY_TIMEOUT_MS * 1.2, // a timer may fire a few ms early
            `answered after ${r.firstDataMs} ms, closed after ${r.closedAfterMs} ms: at the deadline (${BODY_TIMEOUT_MS} ms), before the next byte (${BODY_TIMEOUT_MS * 1.2} ms)`,
        );
    },
);

cluster.test('a chunked request body is refused at once with 411 length_required', async () => {
    const r = await rawExchange(cluster.gw(0), [
        'POST /api/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    ]);
    assert.match(r.text, /^HTTP\/1\.1 411 [^]*"error":"length_required"/, `answer: ${r.text}`);
    assert.ok(r.closedAfterMs < 2000, `answered and closed after ${r.closedAfterMs} ms`);
});
