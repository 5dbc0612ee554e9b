// The token secret (docs/deploy.md, "The token secret"; common/secret.h): a
// gateway listening beyond loopback and the CLI talking to a Redis beyond
// loopback refuse the published default, an empty and a short (< 32 bytes)
// secret with one line on stderr and exit status 2; --secret-file
// (PARLEY_SECRET_FILE) gives the secret from a file; on loopback the default
// is kept, with a warning. And --cookie-secure marks the login cookie Secure.
// Cluster: redis, router, gw1 (plain), gw2 (--cookie-secure).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import { login, mintToken, register } from './lib/client.mjs';
import { Cluster, REPO, SECRET, freePort } from './lib/cluster.mjs';

const cluster = new Cluster('secrets', { gatewayArgs: (i) => (i === 1 ? ['--cookie-secure'] : []) });
before(() => cluster.start());
after(() => cluster.stop());

const PW = 'correct horse battery';
const DEV_SECRET = fs.readFileSync(path.join(REPO, 'common/token.h'), 'utf8').match(/#define TOKEN_DEV_SECRET "([^"]+)"/)[1];
// the environment without any PARLEY_* setting: what a case gives is all there is
const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PARLEY_')));

function file(name, content) {
    const p = path.join(cluster.tmp, name);
    fs.writeFileSync(p, content, { mode: 0o600 });
    return p;
}

// [label, args, stderr pattern]: each must exit 2 with that one line
function refusals() {
    return [
        ['no secret', [], /published development secret is refused beyond loopback/],
        ['the published default', ['--secret', DEV_SECRET], /published development secret is refused beyond loopback/],
        ['an empty --secret', ['--secret='], /--secret is empty: refused beyond loopback/],
        ['a 31-byte secret', ['--secret', 'x'.repeat(31)], /the secret is 31 bytes: refused beyond loopback/],
        ['an empty secret file', ['--secret-file', file('empty', '\n')], /--secret-file is empty: refused beyond loopback/],
        ['a short secret file', ['--secret-file', file('short', 'abc\n')], /the secret is 3 bytes: refused beyond loopback/],
        ['the default in a secret file', ['--secret-file', file('dev', DEV_SECRET)], /published development secret/],
        ['a missing secret file', ['--secret-file', path.join(cluster.tmp, 'missing')], /--secret-file: cannot read .*missing/],
    ];
}

function run(bin, args) {
    return spawnSync(cluster.bin(bin), args, { timeout: 5000, encoding: 'utf8', env: cleanEnv() });
}

function expectRefused(what, r, pattern) {
    assert.equal(r.signal, null, `${what}: still running after 5 s (killed): ${r.stderr}`);
    assert.equal(r.status, 2, `${what}: exit status ${r.status}; stderr: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n').filter(Boolean);
    assert.equal(lines.length, 1, `${what}: one line on stderr, got: ${r.stderr}`);
    assert.match(lines[0], pattern, `${what}: the message`);
}

cluster.test('a gateway listening beyond loopback refuses the default, an empty or a short secret (exit 2, one line)', async () => {
    const port = String(await freePort());
    for (const listen of ['0.0.0.0', '::']) {
        for (const [label, args, pattern] of refusals()) {
            const r = run('parley-gateway', ['--listen', listen, '--port', port, '--redis-url', cluster.redisUrl, '--id', 'gw-refused', ...args]);
            expectRefused(`--listen ${listen} with ${label}`, r, pattern);
        }
    }
    // the environment is read the same way
    const r = spawnSync(cluster.bin('parley-gateway'), ['--port', port, '--redis-url', cluster.redisUrl], {
        timeout: 5000,
        encoding: 'utf8',
        env: { ...cleanEnv(), PARLEY_LISTEN: '0.0.0.0', PARLEY_SECRET: 'short' },
    });
    expectRefused('PARLEY_LISTEN=0.0.0.0 PARLEY_SECRET=short', r, /the secret is 5 bytes/);
});

cluster.test('beyond loopback, a 32-byte secret from --secret-file (PARLEY_SECRET_FILE) is used', async () => {
    const secret = 'k'.repeat(32);
    const g = await cluster.startGateway({ args: ['--listen', '0.0.0.0', '--secret=', '--secret-file', file('good', `${secret}\n`)] });
    const name = cluster.name('file');
    assert.equal((await register(cluster.gw(0), name, PW)).status, 201);
    const users = (tok) => fetch(`http://127.0.0.1:${g.port}/api/users?q=${name}`, { headers: { authorization: `Bearer ${tok}` } }).then((r) => r.status);
    const exp = Math.floor(Date.now() / 1000) + 600;
    assert.equal(await users(mintToken(secret, name, exp)), 200, "a token signed with the file's secret");
    assert.equal(await users(mintToken(SECRET, name, exp)), 401, "a token signed with the other gateways' secret");
    assert.doesNotMatch(g.proc.log, /development secret/, 'no warning with a real secret');
});

cluster.test('on loopback the default secret is kept, with a warning', async () => {
    const g = await cluster.startGateway({ args: ['--secret='] });
    assert.match(g.proc.log, /using the published local-only development secret/, 'the warning');
    const name = cluster.name('dev');
    assert.equal((await register(cluster.gw(0), name, PW)).status, 201);
    const tok = mintToken(DEV_SECRET, name, Math.floor(Date.now() / 1000) + 600);
    const res = await fetch(`http://127.0.0.1:${g.port}/api/users?q=${name}`, { headers: { authorization: `Bearer ${tok}` } });
    assert.equal(res.status, 200, 'a token signed with the default secret');
});

cluster.test('the CLI refuses the default, an empty or a short secret for a Redis beyond loopback (exit 2, one line)', async () => {
    // redis://0.0.0.0:PORT is not a loopback address, yet it reaches the
    // test's Redis on 127.0.0.1 (Linux): a good secret then really runs
    const remote = `redis://0.0.0.0:${cluster.redisPort}`;
    for (const [label, args, pattern] of refusals()) {
        expectRefused(`parley with ${label}`, run('parley', ['--redis-url', remote, ...args, 'online']), pattern);
    }
    const good = run('parley', ['--redis-url', remote, '--secret-file', file('cli', `${'c'.repeat(40)}\n`), 'online']);
    assert.equal(good.status, 0, `a 40-byte secret file: exit ${good.status}: ${good.stderr}`);
    const local = run('parley', ['--redis-url', cluster.redisUrl, 'online']);
    assert.equal(local.status, 0, `loopback with the default: exit ${local.status}: ${local.stderr}`);
    const unix = run('parley', ['--redis-url', 'unix:///nonexistent/redis.sock', 'online']);
    assert.notEqual(unix.status, 2, `a Unix socket is local: not refused for the secret: ${unix.stderr}`);
});

cluster.test('--cookie-secure: the login cookie is Secure on register, login and logout; not without it', async () => {
    const name = cluster.name('ck');
    const plain = await register(cluster.gw(0), name, PW);
    assert.equal(plain.status, 201);
    assert.doesNotMatch(plain.setCookie, /;\s*Secure/i, `without --cookie-secure: ${plain.setCookie}`);
    const name2 = cluster.name('ck');
    const reg = await register(cluster.gw(1), name2, PW);
    assert.equal(reg.status, 201);
    assert.match(reg.setCookie, /^parley_token=[^;]+;.*;\s*Secure(;|$)/i, `register: ${reg.setCookie}`);
    assert.match(reg.setCookie, /HttpOnly/i, `register keeps HttpOnly: ${reg.setCookie}`);
    const li = await login(cluster.gw(1), name2, PW);
    assert.equal(li.status, 200);
    assert.match(li.setCookie, /^parley_token=[^;]+;.*;\s*Secure(;|$)/i, `login: ${li.setCookie}`);
    const out = await fetch(`http://127.0.0.1:${cluster.gw(1)}/api/logout`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${reg.body.token}` },
        body: '{}',
    });
    assert.equal(out.status, 204, `logout: ${out.status}`);
    assert.match(out.headers.get('set-cookie') || '', /^parley_token=;.*;\s*Secure(;|$)/i, `logout: ${out.headers.get('set-cookie')}`);
});
