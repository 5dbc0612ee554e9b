// Bounds of the revocable sessions (docs/internals.md, "Signed-in sessions and revocation"):
// --user-login-rate caps the signed-in sessions made for one user per --user-login-window on every
// gateway together (over it: 429 rate_limited with Retry-After, nothing made), which bounds
// parley:revoked; and a gateway takes no token (its /healthz, token routes and upgrades 503) until
// its first load of parley:revoked after start has finished.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { healthz, login, register, upgradeResult } from './lib/client.mjs';
import { Cluster, waitFor } from './lib/cluster.mjs';

const RATE = 3; // --user-login-rate of this cluster
const WINDOW = 4; // --user-login-window (s): short, for the recovery
const cluster = new Cluster('session_bounds', { gatewayArgs: ['--user-login-rate', String(RATE), '--user-login-window', String(WINDOW)] });
before(() => cluster.start());
after(() => cluster.stop());

const PW = 'correct horse battery';

async function get(port, path, token) {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${token}` } });
    const text = await res.text();
    return { status: res.status, text };
}

const upgrade = upgradeResult;

cluster.test(
    '--user-login-rate: the sessions made for one user per window, every gateway together; 429 with Retry-After past it, then again after the window',
    async () => {
        const name = cluster.name('lr');
        // the register makes the first session; then logins on both gateways up to the rate
        const made = [await register(cluster.gw(0), name, PW)];
        assert.equal(made[0].status, 201);
        for (let i = 1; i < RATE; i++) made.push(await login(cluster.gw(i % 2), name, PW));
        for (const [i, r] of made.entries()) assert.ok(r.status === 200 || r.status === 201, `session ${i + 1}: ${r.status} ${r.text}`);
        const revokedBefore = Number(await cluster.redis('ZCARD', 'parley:revoked'));
        const over = await login(cluster.gw(1), name, PW);
        assert.equal(over.status, 429, `session ${RATE + 1}: ${over.status} ${over.text}`);
        assert.equal(over.body?.error, 'rate_limited');
        const retry = Number(over.headers.get('retry-after'));
        assert.ok(retry >= 1 && retry <= WINDOW, `Retry-After ${over.headers.get('retry-after')}`);
        assert.equal(over.setCookie, null, 'no cookie, no token');
        // the other gateway counts the same sessions; nothing was made or revoked by the refusals
        assert.equal((await login(cluster.gw(0), name, PW)).status, 429);
        assert.equal(Number(await cluster.redis('HLEN', `parley:{u:${name}}:logins`)), RATE);
        assert.equal(Number(await cluster.redis('ZCARD', 'parley:revoked')), revokedBefore);
        // the tokens handed out still work
        assert.equal((await get(cluster.gw(0), '/api/sessions', made[0].body.token)).status, 200);
        // the CLI (the operator) is not counted: `parley token` works for a user at the rate
        const cli = await cluster.cli(['token', name]);
        assert.ok(cli.ok, `parley token: ${cli.stderr}`);
        // a password change is a new session too: refused, the password unchanged
        const pw = await fetch(`http://127.0.0.1:${cluster.gw(0)}/api/password`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${made[1].body.token}` },
            body: JSON.stringify({ old_password: PW, new_password: 'another horse battery' }),
        });
        assert.equal(pw.status, 429);
        assert.ok(Number(pw.headers.get('retry-after')) >= 1);
        // once the oldest session of the window is older than the window, one more may be made
        const t0 = Date.now();
        let back;
        await waitFor(
            async () => {
                back = await login(cluster.gw(0), name, PW);
                if (back.status === 429) return false;
                return true;
            },
            { timeout: (WINDOW + 5) * 1000, interval: 250, what: 'a login after the window' },
        );
        assert.equal(back.status, 200, `${back.status} ${back.text}`);
        assert.ok(Date.now() - t0 <= (retry + 2) * 1000, 'recovered by the time Retry-After said');
    },
);

cluster.test(
    'a started gateway takes no token until its first load of parley:revoked: /healthz, token routes and upgrades 503, then the revoked token 401',
    async () => {
        const [u] = await cluster.users(['rd']);
        const gone = await login(cluster.gw(0), u.name, PW);
        assert.equal(gone.status, 200);
        const out = await fetch(`http://127.0.0.1:${cluster.gw(0)}/api/logout`, { method: 'POST', headers: { authorization: `Bearer ${gone.body.token}` } });
        assert.equal(out.status, 204);
        // the load cannot finish: parley:revoked is moved away and its name holds a string, so
        // every ZSCAN of the new gateway fails (WRONGTYPE) and is retried
        await cluster.redis('RENAME', 'parley:revoked', 'parley:revoked:held');
        await cluster.redis('SET', 'parley:revoked', 'not a zset');
        let restored = false;
        const restore = async () => {
            if (restored) return;
            restored = true;
            await cluster.redis('DEL', 'parley:revoked');
            await cluster.redis('RENAME', 'parley:revoked:held', 'parley:revoked');
        };
        try {
            const g = await cluster.startGateway({ wait: false });
            // the condition: the start-up is done and a load was tried and failed
            await waitFor(() => /gateway \S+ ready/.test(g.proc.log) && /ZSCAN parley:revoked: WRONGTYPE/.test(g.proc.log), {
                timeout: 15000,
                what: `${g.id} ready and its load of parley:revoked failed`,
            });
            assert.equal(await healthz(g.port), 503);
            for (const token of [gone.body.token, u.token]) {
                const r = await get(g.port, '/api/users?q=rd', token);
                assert.equal(r.status, 503, r.text);
                assert.match(r.text, /"unavailable"/);
                assert.equal((await get(g.port, '/api/sessions', token)).status, 503);
            }
            assert.equal(await upgrade(g.port, u.token), 503);
            // no token, no answer to hold back: still 401
            assert.equal((await get(g.port, '/api/users?q=rd', 'x')).status, 401);
            await restore();
            await cluster.waitHealthy(g.index);
            assert.equal((await get(g.port, '/api/users?q=rd', gone.body.token)).status, 401, 'the revoked token, once loaded');
            assert.equal((await get(g.port, '/api/users?q=rd', u.token)).status, 200);
            assert.equal(await upgrade(g.port, u.token), 'open');
        } finally {
            await restore();
        }
    },
);
