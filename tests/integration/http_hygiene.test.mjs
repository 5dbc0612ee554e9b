// HTTP hygiene (docs/protocol.md, decisions: "HTTP hygiene"): the security
// headers on every kind of answer, the static files' refusals (symlinks out of
// the web root, dotfiles), 414 / 431 for an oversize URL / headers. Requests
// are written byte for byte on a raw socket, so the test sees exactly what
// the gateway answers (or that it answered nothing). Cluster: redis, router,
// one gateway.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import { Client, register, sendAck } from './lib/client.mjs';
import { Cluster, makeUsers } from './lib/cluster.mjs';
import { rawRequest, UPGRADE } from './lib/rawhttp.mjs';

const cluster = new Cluster('http_hygiene', { gateways: 1 });
before(async () => {
    await cluster.start();
    const root = cluster.webRoot;
    const outside = path.join(cluster.tmp, 'outside');
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'secret.txt'), 'not for the web\n');
    fs.mkdirSync(path.join(root, 'assets'));
    fs.writeFileSync(path.join(root, 'assets', 'app.js'), 'console.log(1);\n');
    fs.writeFileSync(path.join(root, 'assets', 'app.css'), 'body{}\n');
    fs.writeFileSync(path.join(root, 'assets', '.hidden'), 'hidden\n');
    fs.writeFileSync(path.join(root, '.env'), 'PARLEY_SECRET=x\n');
    fs.mkdirSync(path.join(root, '.git'));
    fs.writeFileSync(path.join(root, '.git', 'config'), '[core]\n');
    fs.symlinkSync('/etc/passwd', path.join(root, 'passwd'));
    fs.symlinkSync('/etc', path.join(root, 'etc'));
    fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(root, 'secret.txt'));
    fs.symlinkSync(outside, path.join(root, 'out'));
    fs.symlinkSync('assets/app.css', path.join(root, 'inside.css')); // stays inside: served
});
after(() => cluster.stop());

const JSON_TYPE = 'application/json';
const COMMON = {
    'content-security-policy':
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self' 'unsafe-inline'; " +
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'cross-origin-opener-policy': 'same-origin',
};

// One request on a fresh socket to the gateway (lib/rawhttp.mjs).
const request = (method, target, opts) => rawRequest(cluster.gw(0), method, target, opts);

function checkCommon(what, r, { json = true } = {}) {
    assert.notEqual(r.status, null, `${what}: no answer (${r.closed})`);
    for (const [k, v] of Object.entries(COMMON)) assert.equal(r.headers[k], v, `${what} (${r.status}): header ${k}`);
    if (json) {
        assert.equal(r.headers['content-type'], JSON_TYPE, `${what} (${r.status}): content-type`);
        assert.equal(r.headers['cache-control'], 'no-store', `${what} (${r.status}): cache-control`);
    }
}

cluster.test('every kind of answer carries the security headers; JSON ones Cache-Control: no-store', async () => {
    const name = cluster.name('hdr');
    const reg = await register(cluster.gw(0), name, 'correct horse battery');
    assert.equal(reg.status, 201, `register: ${reg.status} ${reg.text}`);
    const cases = [
        ['GET / (index.html)', 'GET', '/', {}, '', 200, false],
        ['GET a script', 'GET', '/assets/app.js', {}, '', 200, false],
        ['GET a missing file', 'GET', '/nope.js', {}, '', 404, true],
        ['GET /healthz', 'GET', '/healthz', {}, '', 200, false],
        ['GET /metrics', 'GET', '/metrics', {}, '', 200, false],
        ['GET /api/users without a token', 'GET', '/api/users?q=a', {}, '', 401, true],
        ['GET /api/nope', 'GET', '/api/nope', {}, '', 404, true],
        ['GET /ws without an upgrade', 'GET', '/ws', {}, '', 400, true],
        ['PUT /', 'PUT', '/', {}, '', 405, true],
        [
            'POST /api/login, wrong password',
            'POST',
            '/api/login',
            { 'Content-Type': JSON_TYPE },
            JSON.stringify({ username: name, password: 'wrong password' }),
            401,
            true,
        ],
        [
            'POST /api/login',
            'POST',
            '/api/login',
            { 'Content-Type': JSON_TYPE },
            JSON.stringify({ username: name, password: 'correct horse battery' }),
            200,
            true,
        ],
        ['POST /api/nope', 'POST', '/api/nope', { 'Content-Type': JSON_TYPE }, '{}', 404, true],
        ['upgrade with a bad token', 'GET', '/ws?token=nobody:1:00', UPGRADE, '', 401, true],
        ['upgrade at another path', 'GET', '/wsx', UPGRADE, '', 404, true],
    ];
    for (const [what, method, target, headers, body, status, json] of cases) {
        const r = await request(method, target, { headers, body });
        assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status ?? r.closed} ${r.text ?? ''}`);
        checkCommon(what, r, { json });
    }
});

cluster.test('static files: symlinks out of the web root and dotfiles are 404 like a missing file; the rest is served', async () => {
    const refused = [
        ['a symlink to /etc/passwd', '/passwd'],
        ['a file through a symlink to /etc', '/etc/passwd'],
        ['the directory symlink itself (its index.html)', '/etc/'],
        ['a symlink to a file outside the root', '/secret.txt'],
        ['a file through a symlink to a directory outside', '/out/secret.txt'],
        ['/.env', '/.env'],
        ['/.git/config', '/.git/config'],
        ['/.git/', '/.git/'],
        ['a dotfile in a directory', '/assets/.hidden'],
        ['a percent-encoded dot', '/%2eenv'],
        ['a dot-dot escape', '/assets/../../outside/secret.txt'],
    ];
    for (const [what, target] of refused) {
        const r = await request('GET', target);
        assert.equal(r.status, 404, `${what} (${target}): expected 404, got ${r.status ?? r.closed} ${r.text ?? ''}`);
        assert.deepEqual(r.body, { error: 'not_found', message: 'no such file' }, `${what}: body`);
        checkCommon(what, r);
    }
    for (const [target, type, text] of [
        ['/assets/app.js', 'text/javascript; charset=utf-8', 'console.log(1);\n'],
        ['/assets/app.css', 'text/css; charset=utf-8', 'body{}\n'],
        ['/inside.css', 'text/css; charset=utf-8', 'body{}\n'],
        ['/', 'text/html; charset=utf-8', '<!doctype html><title>parley test</title>\n'],
    ]) {
        const r = await request('GET', target);
        assert.equal(r.status, 200, `${target}: expected 200, got ${r.status ?? r.closed} ${r.text ?? ''}`);
        assert.equal(r.headers['content-type'], type, `${target}: content-type`);
        assert.equal(r.text, text, `${target}: body`);
    }
});

cluster.test(
    'an oversize URL is answered 414, oversize headers 431, with a JSON body; far over, the connection is closed; a bystander is served meanwhile',
    async () => {
        const a = cluster.name('a');
        const b = cluster.name('b');
        const tokens = await makeUsers(cluster.gw(0), [a, b]);
        const ca = await Client.connect(cluster.gw(0), tokens[a], { name: a });
        const cb = await Client.connect(cluster.gw(0), tokens[b], { name: b });
        const long = 'a'.repeat(5000); // over --max-url (4096)
        const cookie = `parley_token=${tokens[a]}; junk=${'v'.repeat(9000)}`; // over --max-headers (8192)
        const URI = { error: 'uri_too_long', message: 'the URL is over 4096 bytes' };
        const HDRS = { error: 'headers_too_large', message: 'the headers are over 8192 bytes' };
        const cases = [
            ['GET, a long path', 'GET', `/${long}`, {}, '', 414, URI],
            ['GET, a long query', 'GET', `/api/users?q=${long}`, {}, '', 414, URI],
            ['POST, a long query', 'POST', `/api/login?x=${long}`, { 'Content-Type': JSON_TYPE }, '{}', 414, URI],
            ['upgrade, a long query', 'GET', `/ws?token=${tokens[a]}&x=${long}`, UPGRADE, '', 414, URI],
            ['GET, a big cookie', 'GET', '/', { Cookie: cookie }, '', 431, HDRS],
            ['POST, a big header', 'POST', '/api/login', { 'Content-Type': JSON_TYPE, 'User-Agent': 'u'.repeat(9000) }, '{}', 431, HDRS],
            ['upgrade, a big cookie', 'GET', '/ws', { ...UPGRADE, Cookie: cookie }, '', 431, HDRS],
        ];
        // the bystander's texts go while the oversize requests are answered
        const texts = (async () => {
            for (let i = 0; i < 5; i++) await sendAck(ca, b, `during ${i}`, `c${i}`);
        })();
        const answers = await Promise.all(cases.map(([, method, target, headers, body]) => request(method, target, { headers, body })));
        await texts;
        cases.forEach(([what, , , , , status, body], i) => {
            const r = answers[i];
            assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status ?? r.closed} ${r.text ?? ''}`);
            assert.deepEqual(r.body, body, `${what}: body`);
            checkCommon(what, r);
        });
        // just under the limits: served
        const under = await request('GET', `/nope?q=${'a'.repeat(4000)}`, { headers: { Cookie: `x=${'v'.repeat(7000)}` } });
        assert.equal(under.status, 404, `under both limits: expected the static 404, got ${under.status ?? under.closed}`);
        // over lws's own buffer (--max-url + --max-headers + 4 KiB): closed without an answer
        for (const [what, headers] of [
            ['a 30 KiB cookie', { Cookie: 'v'.repeat(30000) }],
            ['20 headers of 1 KiB lws has no name for', Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`X-Junk-${i}`, 'v'.repeat(1000)]))],
        ]) {
            const r = await request('GET', '/', { headers });
            assert.equal(r.status, null, `${what}: expected the connection closed without an answer, got ${r.status}`);
            assert.notEqual(r.closed, 'no answer within 5 s', `${what}: the connection was held, not closed`);
        }
        // the bystander's session is still fine, and so is a new request
        for (let i = 0; i < 5; i++) await cb.next((f) => f.kind === 'text' && f.from === a && f.data === `during ${i}`);
        await sendAck(ca, b, 'after', 'c-after');
        await cb.next((f) => f.kind === 'text' && f.from === a && f.data === 'after');
        const ok = await request('GET', '/healthz');
        assert.equal(ok.status, 200, `healthz after: ${ok.status ?? ok.closed}`);
        await ca.close();
        await cb.close();
    },
);
