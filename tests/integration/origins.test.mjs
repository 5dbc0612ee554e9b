// Origins and bodies (docs/protocol.md, decisions: "Origins"; the contract's
// "v1 additions: sessions and safety"): a page of another origin cannot use
// the parley_token cookie (cross-site WebSocket hijacking: 403 before the
// upgrade) nor post to the API (CSRF: 403), and a form or text/plain body is
// refused 415. The request's own origin (its Host, with X-Forwarded-Proto's
// scheme) and --origins are allowed; Bearer and ?token= requests are judged
// by their credentials alone. Requests are written byte for byte
// (lib/rawhttp.mjs): node's own client will not send Origin: null or a
// Host that differs from where it connects. Cluster: redis, router, one gateway.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before } from 'node:test';
import { Client } from './lib/client.mjs';
import { BUILD_DIR, Cluster, makeUsers } from './lib/cluster.mjs';
import { rawRequest, UPGRADE } from './lib/rawhttp.mjs';

const EXTRA = 'https://chat.example.com';
const cluster = new Cluster('origins', { gateways: 1, gatewayArgs: ['--origins', `${EXTRA}, http://10.0.0.7:8080`] });
let alice;
let token;
before(async () => {
    await cluster.start();
    alice = cluster.name('alice');
    token = (await makeUsers(cluster.gw(0), [alice]))[alice];
});
after(() => cluster.stop());

const own = () => `http://127.0.0.1:${cluster.gw(0)}`;
const request = (method, target, opts) => rawRequest(cluster.gw(0), method, target, opts);
const cookie = () => ({ Cookie: `other=1; parley_token=${token}` });

function expectRefused(what, r, status, code) {
    assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status} ${r.text ?? r.closed}`);
    assert.equal(r.body?.error, code, `${what}: error code`);
}

cluster.test('the upgrade with the cookie: foreign and null origins 403, own and listed ones 101', async () => {
    const refused = [
        ['a foreign origin', { Origin: 'http://evil.example' }],
        ['Origin: null', { Origin: 'null' }],
        ['the same host on another port', { Origin: `http://127.0.0.1:${cluster.gw(0) + 1}` }],
        ['another name of the same host', { Origin: `http://localhost:${cluster.gw(0)}` }],
        ['https without a TLS proxy saying so', { Origin: `https://127.0.0.1:${cluster.gw(0)}` }],
        ['a listed origin with another scheme', { Origin: 'http://chat.example.com' }],
        ['a suffix of a listed host', { Origin: 'https://evilchat.example.com' }],
        ['a listed host as a prefix', { Origin: 'https://chat.example.com.evil.example' }],
        ['an origin with a path', { Origin: `${own()}/x` }],
        ['garbage', { Origin: 'http://' }],
        ['no Origin but Sec-Fetch-Site: cross-site', { 'Sec-Fetch-Site': 'cross-site' }],
        ['no Origin but Sec-Fetch-Site: same-site', { 'Sec-Fetch-Site': 'same-site' }],
    ];
    for (const [what, hdrs] of refused) {
        const r = await request('GET', '/ws', { headers: { ...UPGRADE, ...cookie(), ...hdrs } });
        expectRefused(`upgrade, ${what}`, r, 403, 'forbidden_origin');
    }
    const accepted = [
        ['its own origin', { Origin: own() }],
        ['its own origin, upper case', { Origin: own().toUpperCase() }],
        ['a listed origin', { Origin: EXTRA }],
        ['a listed origin with its default port', { Origin: `${EXTRA}:443` }],
        ['the second listed origin', { Origin: 'http://10.0.0.7:8080' }],
        ['https behind a TLS proxy', { Origin: `https://127.0.0.1:${cluster.gw(0)}`, 'X-Forwarded-Proto': 'https' }],
        ['a public name the proxy forwards', { Origin: 'https://parley.example.org', Host: 'parley.example.org', 'X-Forwarded-Proto': 'https' }],
        ['no Origin (a non-browser client)', {}],
        ['no Origin, Sec-Fetch-Site: same-origin', { 'Sec-Fetch-Site': 'same-origin' }],
    ];
    for (const [what, hdrs] of accepted) {
        const r = await request('GET', '/ws', { headers: { ...UPGRADE, ...cookie(), ...hdrs } });
        assert.equal(r.status, 101, `upgrade, ${what}: expected 101, got ${r.status} ${r.text ?? r.closed}`);
    }
});

cluster.test('a foreign origin with ?token= or Bearer is judged by the token; without any, 401', async () => {
    const evil = { Origin: 'http://evil.example' };
    let r = await request('GET', `/ws?token=${encodeURIComponent(token)}`, { headers: { ...UPGRADE, ...evil } });
    assert.equal(r.status, 101, `?token= from a foreign page: ${r.status} ${r.text}`);
    r = await request('GET', '/ws', { headers: { ...UPGRADE, ...evil, Authorization: `Bearer ${token}` } });
    assert.equal(r.status, 101, `Bearer from a foreign page: ${r.status} ${r.text}`);
    r = await request('GET', `/ws?token=${encodeURIComponent(token)}x`, { headers: { ...UPGRADE, ...evil, ...cookie() } });
    expectRefused('a bad ?token= and the cookie from a foreign page', r, 403, 'forbidden_origin');
    r = await request('GET', '/ws', { headers: { ...UPGRADE, ...evil } });
    expectRefused('no credential from a foreign page', r, 401, 'unauthorized');
    // and a real client through the allowed origin gets a working session
    const c = await Client.connect(cluster.gw(0), token, { name: alice });
    c.close();
});

cluster.test('GET /api/users with the cookie from a foreign page: 403; with Bearer: 200', async () => {
    let r = await request('GET', '/api/users?q=a', { headers: { ...cookie(), Origin: 'http://evil.example' } });
    expectRefused('/api/users, foreign origin', r, 403, 'forbidden_origin');
    r = await request('GET', '/api/users?q=a', { headers: { ...cookie(), Origin: own() } });
    assert.equal(r.status, 200, `/api/users, own origin: ${r.status} ${r.text}`);
    r = await request('GET', '/api/users?q=a', { headers: { Authorization: `Bearer ${token}`, Origin: 'http://evil.example' } });
    assert.equal(r.status, 200, `/api/users, Bearer: ${r.status} ${r.text}`);
});

cluster.test('POSTs from foreign pages 403, forms and text/plain 415, JSON accepted', async () => {
    const creds = JSON.stringify({ username: alice, password: 'correct horse battery' });
    const json = { 'Content-Type': 'application/json' };
    for (const route of ['/api/login', '/api/register', '/api/logout', '/api/logout-all', '/api/password']) {
        for (const [what, hdrs] of [
            ['a foreign origin', { Origin: 'http://evil.example' }],
            ['Origin: null', { Origin: 'null' }],
            ['Sec-Fetch-Site: cross-site', { 'Sec-Fetch-Site': 'cross-site' }],
        ]) {
            const r = await request('POST', route, { headers: { ...json, ...cookie(), ...hdrs }, body: creds });
            expectRefused(`POST ${route}, ${what}`, r, 403, 'forbidden_origin');
        }
    }
    for (const route of ['/api/login', '/api/register', '/api/password']) {
        for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', null]) {
            const headers = { Origin: own() };
            if (ct) headers['Content-Type'] = ct;
            const r = await request('POST', route, { headers, body: creds });
            expectRefused(`POST ${route} as ${ct}`, r, 415, 'unsupported_media_type');
        }
    }
    let r = await request('POST', '/api/login', { headers: { 'Content-Type': 'application/json; charset=utf-8', Origin: own() }, body: creds });
    assert.equal(r.status, 200, `login, JSON with a charset, own origin: ${r.status} ${r.text}`);
    r = await request('POST', '/api/login', { headers: { 'Content-Type': 'Application/JSON', Origin: EXTRA }, body: creds });
    assert.equal(r.status, 200, `login, listed origin: ${r.status} ${r.text}`);
    r = await request('POST', '/api/login', { headers: json, body: creds });
    assert.equal(r.status, 200, `login without Origin (a non-browser client): ${r.status} ${r.text}`);
    // logout takes no body: its Content-Type does not matter
    r = await request('POST', '/api/logout', { headers: { Origin: own(), 'Content-Type': 'text/plain' } });
    assert.equal(r.status, 204, `logout, text/plain, own origin: ${r.status} ${r.text}`);
});

cluster.test('the session routes: the cookie from a foreign page 403 (GET, DELETE), Bearer judged by itself', async () => {
    const evil = { Origin: 'http://evil.example' };
    let r = await request('GET', '/api/sessions', { headers: { ...cookie(), ...evil } });
    expectRefused('GET /api/sessions, foreign origin', r, 403, 'forbidden_origin');
    r = await request('GET', '/api/sessions', { headers: { ...cookie(), Origin: own() } });
    assert.equal(r.status, 200, `GET /api/sessions, own origin: ${r.status} ${r.text}`);
    const id = r.body[0].id;
    r = await request('DELETE', `/api/sessions/${id}`, { headers: { ...cookie(), ...evil } });
    expectRefused('DELETE /api/sessions/ID, foreign origin', r, 403, 'forbidden_origin');
    r = await request('DELETE', `/api/sessions/${id}`, { headers: { ...cookie(), 'Sec-Fetch-Site': 'cross-site' } });
    expectRefused('DELETE /api/sessions/ID, cross-site', r, 403, 'forbidden_origin');
    r = await request('GET', '/api/sessions', { headers: { Authorization: `Bearer ${token}`, ...evil } });
    assert.equal(r.status, 200, `GET /api/sessions, Bearer from a foreign page: ${r.status} ${r.text}`);
    assert.ok(
        r.body.some((x) => x.id === id),
        'the session survived every refused request',
    );
});

cluster.test('a bad --origins entry: one-line error, exit 2', () => {
    const bin = path.join(BUILD_DIR, 'parley-gateway');
    for (const bad of [
        'ftp://x.example',
        'https://x.example/path',
        'x.example',
        'https://x.example:99999',
        'https://x.example:8a',
        '*',
        'https://*.example.com',
        'https://user@x.example',
    ]) {
        const r = spawnSync(bin, ['--origins', `https://ok.example,${bad}`, '--port', '1'], { timeout: 5000, encoding: 'utf8' });
        assert.equal(r.status, 2, `--origins ${bad}: exit ${r.status}, stderr ${r.stderr}`);
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, `--origins ${bad}: one line, got ${r.stderr}`);
        assert.match(lines[0], /--origins: .* is not an origin/, `--origins ${bad}`);
    }
});
