// Revocable server-side sessions (docs/protocol.md, "Sessions"): every token names a session;
// logout, logout-all, a password change, DELETE /api/sessions/ID and the CLI revoke sessions on
// every gateway at once (open sockets closed 4001 within a second, the token refused on HTTP and
// at the upgrade with 401); GET /api/sessions lists them; --user-logins bounds them; a revocation
// survives a gateway restart, a lost announcement and a Redis restart.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, api, login, mintToken, tokenSid, upgradeResult } from './lib/client.mjs';
import { Cluster, SECRET, waitFor } from './lib/cluster.mjs';

const LOGINS = 5; // --user-logins of this cluster
// 20 sockets of one session + others: over the default --user-sessions (20); 10 upgrades per
// gateway at once: within the default --user-open-burst (20)
// --last-seen-interval 1: an open socket moves its session's last_seen every second
const cluster = new Cluster('sessions', { gatewayArgs: ['--user-sessions', '40', '--user-logins', String(LOGINS), '--last-seen-interval', '1'] });
before(() => cluster.start());
after(() => cluster.stop());

const PW = 'correct horse battery';

const upgrade = upgradeResult;

// Both gateways refuse token: 401 on an authenticated route and at the upgrade.
async function refusedEverywhere(token, what) {
    for (let i = 0; i < cluster.gateways.length; i++) {
        const r = await api(cluster.gw(i), 'GET', '/api/users?q=a', { token });
        assert.equal(r.status, 401, `${what}: GET /api/users on gw${i + 1}: ${r.status} ${r.text}`);
        const c = await api(cluster.gw(i), 'GET', '/api/users?q=a', { token, cookie: true });
        assert.equal(c.status, 401, `${what}: GET /api/users with the cookie on gw${i + 1}: ${c.status}`);
        assert.equal(await upgrade(cluster.gw(i), token), 401, `${what}: upgrade on gw${i + 1}`);
    }
}

async function acceptedEverywhere(token, what) {
    for (let i = 0; i < cluster.gateways.length; i++) {
        const r = await api(cluster.gw(i), 'GET', '/api/users?q=a', { token });
        assert.equal(r.status, 200, `${what}: GET /api/users on gw${i + 1}: ${r.status} ${r.text}`);
    }
}

// Every client closed with 4001, each within ms of t0 (performance.now()).
async function allRevoked(clients, t0, ms = 1000, t = null) {
    const infos = await Promise.all(
        clients.map(async (c) => {
            const info = await c.waitClosed(3000);
            return { name: c.name, code: info.code, after: performance.now() - t0 };
        }),
    );
    for (const i of infos) assert.equal(i.code, 4001, `${i.name}: closed with ${i.code}, not 4001`);
    const slowest = Math.max(...infos.map((i) => i.after));
    t?.diagnostic(`${infos.length} sockets closed 4001, the last ${Math.round(slowest)} ms after the revocation`);
    assert.ok(slowest <= ms, `the last socket closed ${Math.round(slowest)} ms after the revocation (limit ${ms})`);
}

const stillOpen = (c, what) => assert.equal(c.closeInfo, null, `${what}: closed ${JSON.stringify(c.closeInfo)}`);

cluster.test('logout revokes its session at once on both gateways: 20 sockets closed 4001 within 1 s, the token refused (401)', async (t) => {
    const [u] = await cluster.users(['lo']);
    const other = await login(cluster.gw(1), u.name, PW);
    assert.equal(other.status, 200, other.text);
    const socks = [];
    for (let i = 0; i < 20; i++) socks.push(Client.connect(cluster.gw(i % 2), u.token, { name: `lo-${i}` }));
    const open = await Promise.all(socks);
    const keep = [
        await Client.connect(cluster.gw(0), other.body.token, { name: 'other-0' }),
        await Client.connect(cluster.gw(1), other.body.token, { name: 'other-1' }),
    ];

    const t0 = performance.now();
    const r = await api(cluster.gw(0), 'POST', '/api/logout', { token: u.token });
    assert.equal(r.status, 204, `logout: ${r.status} ${r.text}`);
    assert.match(r.setCookie || '', /parley_token=;.*Max-Age=0/, `logout clears the cookie: ${r.setCookie}`);
    await allRevoked(open, t0, 1000, t);
    await refusedEverywhere(u.token, 'after logout');
    // the user's other session is untouched
    for (const c of keep) stillOpen(c, 'the other session');
    await acceptedEverywhere(other.body.token, 'the other session');
    // a second logout of the same token answers 204 and changes nothing
    assert.equal((await api(cluster.gw(1), 'POST', '/api/logout', { token: u.token })).status, 204);
    for (const c of keep) stillOpen(c, 'the other session after a second logout');
});

cluster.test('logout with the cookie revokes the session the cookie names', async () => {
    const [u] = await cluster.users(['lc']);
    const c = await Client.connect(cluster.gw(1), u.token);
    const t0 = performance.now();
    const r = await api(cluster.gw(0), 'POST', '/api/logout', { token: u.token, cookie: true });
    assert.equal(r.status, 204, r.text);
    await allRevoked([c], t0);
    await refusedEverywhere(u.token, 'after a cookie logout');
});

cluster.test('logout-all: 204, every session of the user revoked on both gateways (this one too)', async () => {
    const [u] = await cluster.users(['la']);
    const t2 = (await login(cluster.gw(0), u.name, PW)).body.token;
    const t3 = (await login(cluster.gw(1), u.name, PW)).body.token;
    const socks = [await Client.connect(cluster.gw(0), u.token), await Client.connect(cluster.gw(1), t3), await Client.connect(cluster.gw(1), t2)];
    const [bystander] = await cluster.users(['lb']);
    const b = await Client.connect(cluster.gw(0), bystander.token);

    assert.equal((await api(cluster.gw(0), 'POST', '/api/logout-all')).status, 401, 'logout-all without a token');
    const t0 = performance.now();
    const r = await api(cluster.gw(1), 'POST', '/api/logout-all', { token: t2 });
    assert.equal(r.status, 204, `logout-all: ${r.status} ${r.text}`);
    await allRevoked(socks, t0);
    for (const t of [u.token, t2, t3]) await refusedEverywhere(t, 'after logout-all');
    stillOpen(b, "another user's socket");
    // logging in again gives a working session, the only one listed
    const again = await login(cluster.gw(0), u.name, PW);
    assert.equal(again.status, 200, again.text);
    const list = await api(cluster.gw(1), 'GET', '/api/sessions', { token: again.body.token });
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(
        list.body.map((s) => s.id),
        [tokenSid(again.body.token)],
    );
});

cluster.test(
    'password change: 401 wrong old password, 400 invalid new one; 200 with a fresh session, every other session and the old token revoked',
    async () => {
        const [u] = await cluster.users(['pw']);
        const t2 = (await login(cluster.gw(1), u.name, PW)).body.token;
        const socks = [await Client.connect(cluster.gw(0), u.token), await Client.connect(cluster.gw(1), t2)];
        const gw = cluster.gw(0);

        assert.equal((await api(gw, 'POST', '/api/password', { body: { old_password: PW, new_password: 'another pass 1' } })).status, 401, 'no token');
        let r = await api(gw, 'POST', '/api/password', { token: u.token, body: { old_password: 'not the password', new_password: 'another pass 1' } });
        assert.equal(r.status, 401, `wrong old password: ${r.status} ${r.text}`);
        assert.equal(r.body?.error, 'bad_credentials', r.text);
        r = await api(gw, 'POST', '/api/password', { token: u.token, body: { old_password: PW, new_password: 'short' } });
        assert.equal(r.status, 400, `short new password: ${r.status} ${r.text}`);
        assert.equal(r.body?.error, 'invalid_password', r.text);
        r = await api(gw, 'POST', '/api/password', { token: u.token, body: '{"old_password": 1}' });
        assert.equal(r.status, 400, `not the object expected: ${r.status} ${r.text}`);
        r = await api(gw, 'POST', '/api/password', { token: u.token, body: 'not json' });
        assert.equal(r.status, 400, `not JSON: ${r.status} ${r.text}`);
        for (const c of socks) stillOpen(c, 'refused changes revoke nothing');

        const t0 = performance.now();
        r = await api(gw, 'POST', '/api/password', { token: u.token, body: { old_password: PW, new_password: 'another pass 1' } });
        assert.equal(r.status, 200, `password change: ${r.status} ${r.text}`);
        assert.equal(r.body.username, u.name);
        const fresh = r.body.token;
        assert.ok(r.setCookie?.includes(fresh), `the cookie carries the new token: ${r.setCookie}`);
        assert.notEqual(tokenSid(fresh), tokenSid(u.token));
        await allRevoked(socks, t0);
        await refusedEverywhere(u.token, 'the token that changed the password');
        await refusedEverywhere(t2, 'another session');
        await acceptedEverywhere(fresh, 'the fresh session');
        const c = await Client.connect(cluster.gw(1), fresh);
        assert.equal(c.hello.user, u.name);
        assert.equal((await login(gw, u.name, PW)).status, 401, 'the old password');
        assert.equal((await login(gw, u.name, 'another pass 1')).status, 200, 'the new password');
    },
);

cluster.test(
    "GET /api/sessions lists id, created, last_seen, agent, current; DELETE /api/sessions/ID revokes one (204), 404 unknown or not the user's",
    async () => {
        const [u, v] = await cluster.users(['sl', 'sv']);
        const before = Date.now();
        const phone = await api(cluster.gw(1), 'POST', '/api/login', {
            body: { username: u.name, password: PW },
            agent: `test-phone/1.0 (\tx)${'y'.repeat(300)}`,
        });
        assert.equal(phone.status, 200, phone.text);
        const t2 = phone.body.token;

        assert.equal((await api(cluster.gw(0), 'GET', '/api/sessions')).status, 401, 'no token');
        let list = await api(cluster.gw(0), 'GET', '/api/sessions', { token: u.token });
        assert.equal(list.status, 200, list.text);
        assert.equal(list.body.length, 2, list.text);
        const [first, second] = list.body;
        assert.deepEqual(Object.keys(first).sort(), ['agent', 'created', 'current', 'id', 'last_seen']);
        assert.equal(first.id, tokenSid(u.token), 'oldest first');
        assert.equal(first.current, true);
        assert.equal(second.id, tokenSid(t2));
        assert.equal(second.current, false);
        assert.equal(second.agent, `test-phone/1.0 (?x)${'y'.repeat(160 - 19)}`, 'the agent: control bytes made ?, cut to 160 bytes');
        assert.ok(second.created >= before - 5 && second.created <= Date.now() + 5, `created in ms: ${second.created}`);
        assert.ok(second.last_seen >= second.created, `last_seen ${second.last_seen}`);

        // opening a socket moves last_seen
        const seen0 = second.last_seen;
        await waitFor(() => Date.now() > seen0 + 2, { what: 'a later millisecond' });
        const c = await Client.connect(cluster.gw(0), t2);
        list = await api(cluster.gw(1), 'GET', '/api/sessions', { token: t2 });
        const mine = list.body.find((s) => s.id === tokenSid(t2));
        assert.ok(mine.current && mine.last_seen > seen0, `last_seen after an open: ${JSON.stringify(mine)}`);
        // and while the socket stays open (--last-seen-interval 1)
        await waitFor(
            async () => {
                const l = await api(cluster.gw(1), 'GET', '/api/sessions', { token: u.token });
                return l.body.find((s) => s.id === tokenSid(t2)).last_seen >= mine.last_seen + 1000;
            },
            { timeout: 5000, what: 'last_seen moving while the socket is open' },
        );

        // not the user's: 404, and that session lives on
        const vc = await Client.connect(cluster.gw(1), v.token);
        let r = await api(cluster.gw(0), 'DELETE', `/api/sessions/${tokenSid(v.token)}`, { token: u.token });
        assert.equal(r.status, 404, `another user's session: ${r.status} ${r.text}`);
        r = await api(cluster.gw(0), 'DELETE', '/api/sessions/nonsense', { token: u.token });
        assert.equal(r.status, 404, `not a session id: ${r.status}`);
        r = await api(cluster.gw(0), 'DELETE', `/api/sessions/${'0'.repeat(32)}`, { token: u.token });
        assert.equal(r.status, 404, `unknown session id: ${r.status}`);
        assert.equal((await api(cluster.gw(0), 'DELETE', `/api/sessions/${tokenSid(t2)}`)).status, 401, 'DELETE without a token');

        const t0 = performance.now();
        r = await api(cluster.gw(1), 'DELETE', `/api/sessions/${tokenSid(t2)}`, { token: u.token });
        assert.equal(r.status, 204, `DELETE: ${r.status} ${r.text}`);
        await allRevoked([c], t0);
        await refusedEverywhere(t2, 'the deleted session');
        r = await api(cluster.gw(0), 'DELETE', `/api/sessions/${tokenSid(t2)}`, { token: u.token });
        assert.equal(r.status, 404, `deleted twice: ${r.status}`);
        list = await api(cluster.gw(0), 'GET', '/api/sessions', { token: u.token });
        assert.deepEqual(
            list.body.map((s) => s.id),
            [tokenSid(u.token)],
        );
        stillOpen(vc, "the other user's socket");
        await acceptedEverywhere(v.token, "the other user's token");
    },
);

cluster.test(`--user-logins ${LOGINS}: the oldest session is revoked to make room for a new one`, async () => {
    const [u] = await cluster.users(['cap']);
    const c = await Client.connect(cluster.gw(1), u.token);
    const tokens = [u.token];
    for (let i = 1; i < LOGINS; i++) tokens.push((await login(cluster.gw(i % 2), u.name, PW)).body.token);
    stillOpen(c, `${LOGINS} sessions`);
    const t0 = performance.now();
    const newest = await login(cluster.gw(0), u.name, PW);
    assert.equal(newest.status, 200, newest.text);
    await allRevoked([c], t0);
    await refusedEverywhere(u.token, 'the oldest session');
    const list = await api(cluster.gw(1), 'GET', '/api/sessions', { token: newest.body.token });
    assert.deepEqual(
        list.body.map((s) => s.id),
        [...tokens.slice(1), newest.body.token].map(tokenSid),
    );
});

cluster.test('CLI: token makes a real session; logins lists; revoke one and --all; disable closes every socket 4001 and refuses logins; enable', async () => {
    const [u] = await cluster.users(['cli']);
    const made = await cluster.cli(['token', u.name]);
    assert.ok(made.ok, `parley token: ${made.stderr}`);
    const tok = made.stdout.trim();
    const c = await Client.connect(cluster.gw(0), tok);
    const listed = await cluster.cli(['logins', u.name]);
    assert.ok(listed.ok, listed.stderr);
    assert.match(listed.stdout, /2 signed-in session\(s\)/, listed.stdout);
    assert.ok(listed.stdout.includes(tokenSid(tok)) && listed.stdout.includes('parley token'), listed.stdout);
    assert.equal((await cluster.cli(['token', 'nosuchuser'])).ok, false, 'token for an unknown user');

    let t0 = performance.now();
    let r = await cluster.cli(['revoke', u.name, tokenSid(tok)]);
    assert.ok(r.ok, `parley revoke: ${r.stderr}`);
    await allRevoked([c], t0);
    await refusedEverywhere(tok, 'revoked by the CLI');
    r = await cluster.cli(['revoke', u.name, tokenSid(tok)]);
    assert.equal(r.ok, false, 'revoking it again fails');

    const t2 = (await login(cluster.gw(1), u.name, PW)).body.token;
    const socks = [await Client.connect(cluster.gw(0), u.token), await Client.connect(cluster.gw(1), t2)];
    t0 = performance.now();
    r = await cluster.cli(['revoke', u.name, '--all']);
    assert.ok(r.ok && /revoked 2 session/.test(r.stdout), `revoke --all: ${r.stdout} ${r.stderr}`);
    await allRevoked(socks, t0);

    const t3 = (await login(cluster.gw(0), u.name, PW)).body.token;
    const s3 = [await Client.connect(cluster.gw(0), t3), await Client.connect(cluster.gw(1), t3)];
    t0 = performance.now();
    r = await cluster.cli(['disable', u.name]);
    assert.ok(r.ok, `disable: ${r.stderr}`);
    await allRevoked(s3, t0);
    await refusedEverywhere(t3, 'a disabled user');
    const refused = await login(cluster.gw(1), u.name, PW);
    assert.equal(refused.status, 403, `login of a disabled user: ${refused.status} ${refused.text}`);
    assert.equal(refused.body?.error, 'account_disabled');
    assert.equal((await cluster.cli(['token', u.name])).ok, false, 'no CLI token for a disabled user');
    assert.equal((await cluster.cli(['disable', 'nosuchuser'])).ok, false);

    r = await cluster.cli(['enable', u.name]);
    assert.ok(r.ok, `enable: ${r.stderr}`);
    const back = await login(cluster.gw(1), u.name, PW);
    assert.equal(back.status, 200, back.text);
    await Client.connect(cluster.gw(0), back.body.token);
});

cluster.test('a revocation survives a gateway restart', async () => {
    const [u] = await cluster.users(['gr']);
    assert.equal((await api(cluster.gw(0), 'POST', '/api/logout', { token: u.token })).status, 204);
    await cluster.killGateway(1, 'SIGKILL');
    await cluster.startGateway({ index: 1 });
    const r = await api(cluster.gw(1), 'GET', '/api/users?q=a', { token: u.token });
    assert.equal(r.status, 401, `the restarted gateway: ${r.status} ${r.text}`);
    assert.equal(await upgrade(cluster.gw(1), u.token), 401);
});

cluster.test('a revocation whose announcement a gateway missed: caught up at its next subscription, and session_open refuses the socket (4001)', async () => {
    const [u] = await cluster.users(['miss']);
    const c = await Client.connect(cluster.gw(1), u.token);
    // revoked in Redis without the announcement (as if it was lost with a subscriber connection)
    const sid = tokenSid(u.token);
    const exp = Number(u.token.split(':')[2]);
    await cluster.redis('HDEL', `parley:{u:${u.name}}:logins`, sid);
    // the session_open check: a new socket of that token is closed before hello
    assert.equal(await upgrade(cluster.gw(0), u.token), 'closed 4001', 'an upgrade of a session that is gone');
    await cluster.redis('ZADD', 'parley:revoked', String(exp), `${u.name} ${sid}`);
    await acceptedEverywhere(u.token, 'nobody was told yet');
    stillOpen(c, 'nobody was told yet');
    // gw2's subscriber reconnects: it reads the revocations again and closes the socket
    const killed = await cluster.redis('CLIENT', 'KILL', 'TYPE', 'pubsub');
    assert.ok(Number(killed) >= 2, `subscriber connections killed: ${killed}`);
    assert.equal((await c.waitClosed(5000)).code, 4001);
    await waitFor(async () => (await api(cluster.gw(0), 'GET', '/api/users?q=a', { token: u.token })).status === 401, {
        what: 'gw1 refusing the token after its subscriber came back',
    });
    await refusedEverywhere(u.token, 'after the re-read');
});

cluster.test('a revocation survives a Redis restart (appendonly): tokens refused, sessions gone', async () => {
    const [u] = await cluster.users(['rr']);
    assert.equal((await api(cluster.gw(1), 'POST', '/api/logout', { token: u.token })).status, 204);
    const live = await login(cluster.gw(0), u.name, PW);
    const ex = await cluster.stopRedis('SIGTERM');
    assert.equal(ex.code, 0);
    await cluster.startRedis();
    for (let i = 0; i < cluster.gateways.length; i++) await cluster.waitHealthy(i, 20000);
    await refusedEverywhere(u.token, 'after a Redis restart');
    const c = await Client.connect(cluster.gw(1), live.body.token);
    assert.equal(c.hello.user, u.name, 'a live session works after the restart');
    // a token minted with the secret for a session that does not exist opens no socket
    const forged = mintToken(SECRET, u.name, Math.floor(Date.now() / 1000) + 600, 'f'.repeat(32));
    assert.equal(await upgrade(cluster.gw(0), forged), 'closed 4001');
});
