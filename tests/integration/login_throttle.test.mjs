// Login throttling and the password workers (issue 13; docs/protocol.md "Login throttling"):
// attempt budgets per client address, per account and per account and address, shared by
// every gateway through Redis, answered 429 {"error":"rate_limited"} with Retry-After and
// recovered after --throttle-window; the client address read from X-Forwarded-For only when the
// peer is a --trusted-proxies address; unknown names cost the same as known ones (medians of
// login times compared, no absolute time); several hashing workers and a bound per address on
// the queue, so a flood of logins from one address does not make another address's login fail
// or wait for the whole flood.
//
// The gateways trust 127.0.0.1 (the test's own peer address), so each request's
// X-Forwarded-For names the address it comes from: many clients from one machine.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before } from 'node:test';
import { Cluster, makeUsers, waitFor } from './lib/cluster.mjs';

const PW = 'correct horse battery';
const WINDOW_S = 3;
const BUDGETS = { addr: 8, account: 6, accountAddr: 3 };
const throttled = [
    '--trusted-proxies',
    '127.0.0.1/32,::1',
    '--throttle-window',
    String(WINDOW_S),
    '--throttle-addr',
    String(BUDGETS.addr),
    '--throttle-account',
    String(BUDGETS.account),
    '--throttle-account-addr',
    String(BUDGETS.accountAddr),
];
const cluster = new Cluster('login_throttle', { gateways: 2, gatewayArgs: throttled });
before(() => cluster.start());
after(() => cluster.stop());

// POST path with a JSON body, from client address `from` (X-Forwarded-For; none when null).
async function post(port, path, body, from) {
    const headers = { 'content-type': 'application/json' };
    if (from) headers['x-forwarded-for'] = from;
    const started = performance.now();
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
    const text = await res.text();
    let json = null;
    try {
        json = JSON.parse(text);
    } catch {
        /* not JSON */
    }
    return { status: res.status, body: json, text, retryAfter: res.headers.get('retry-after'), ms: performance.now() - started };
}
const login = (port, username, password, from) => post(port, '/api/login', { username, password }, from);
const register = (port, username, password, from) => post(port, '/api/register', { username, password }, from);

function assertLimited(r, what) {
    assert.equal(r.status, 429, `${what}: 429, got ${r.status} ${r.text}`);
    assert.equal(r.body?.error, 'rate_limited', `${what}: error code`);
    const s = Number(r.retryAfter);
    assert.ok(Number.isInteger(s) && s >= 1 && s <= WINDOW_S, `${what}: Retry-After ${r.retryAfter} in 1..${WINDOW_S}`);
}

// The right password from `from` logs in again (the window passed): a condition polled, each
// refused try costing nothing (a refused attempt is not counted).
const recovers = (port, user, from) =>
    waitFor(async () => (await login(port, user, PW, from)).status === 200, {
        timeout: (WINDOW_S + 5) * 1000,
        interval: 250,
        what: `${user} logs in from ${from} after the window`,
    });

cluster.test(
    'wrong passwords from one address: 401 up to the budget, then 429 with Retry-After even for the right one, on every gateway; another address logs in; recovery after the window',
    async () => {
        const user = cluster.name('victim');
        await makeUsers(cluster.gw(0), [user]);
        const from = '198.51.100.1';
        for (let i = 0; i < BUDGETS.accountAddr; i++) {
            const r = await login(cluster.gw(i % 2), user, 'wrong password', from);
            assert.equal(r.status, 401, `wrong password ${i + 1}: ${r.status} ${r.text}`);
            assert.equal(r.body?.error, 'bad_credentials');
        }
        for (const g of [0, 1]) assertLimited(await login(cluster.gw(g), user, PW, from), `the right password on gateway ${g}`);
        const elsewhere = await login(cluster.gw(1), user, PW, '198.51.100.2');
        assert.equal(elsewhere.status, 200, `the owner from another address: ${elsewhere.status} ${elsewhere.text}`);
        assert.equal(elsewhere.body?.username, user);
        await recovers(cluster.gw(0), user, from);
    },
);

cluster.test(
    'a stolen session guessing the password (POST /api/password): 401 up to the account+address budget, then 429 even for the right old password; recovery',
    async () => {
        const user = cluster.name('pwchange');
        const token = (await makeUsers(cluster.gw(0), [user]))[user];
        const from = '198.51.100.77';
        const change = async (port, oldPw) => {
            const res = await fetch(`http://127.0.0.1:${port}/api/password`, {
                method: 'POST',
                headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-forwarded-for': from },
                body: JSON.stringify({ old_password: oldPw, new_password: 'a brand new passphrase' }),
            });
            const text = await res.text();
            return { status: res.status, text, body: text ? JSON.parse(text) : null, retryAfter: res.headers.get('retry-after') };
        };
        for (let i = 0; i < BUDGETS.accountAddr; i++) {
            const r = await change(cluster.gw(i % 2), `wrong guess ${i}`);
            assert.equal(r.status, 401, `wrong old password ${i + 1}: ${r.status} ${r.text}`);
        }
        for (const g of [0, 1]) assertLimited(await change(cluster.gw(g), PW), `the right old password on gateway ${g}`);
        // counted like logins: the same account and address cannot log in either
        assertLimited(await login(cluster.gw(0), user, PW, from), 'a login from the same address');
        await waitFor(async () => (await change(cluster.gw(1), PW)).status === 200, {
            timeout: (WINDOW_S + 5) * 1000,
            interval: 250,
            what: 'the password change goes through after the window',
        });
        assert.equal((await login(cluster.gw(0), user, 'a brand new passphrase', '198.51.100.78')).status, 200, 'the new password logs in');
    },
);

cluster.test('a guesser spread over many addresses meets the account budget: 429 from every address until the window ends', async () => {
    const user = cluster.name('spread');
    await makeUsers(cluster.gw(0), [user]);
    for (let i = 0; i < BUDGETS.account; i++) {
        const r = await login(cluster.gw(i % 2), user, 'wrong password', `203.0.113.${i + 1}`);
        assert.equal(r.status, 401, `guess ${i + 1}: ${r.status}`);
    }
    assertLimited(await login(cluster.gw(0), user, PW, '203.0.113.200'), 'the right password from a fresh address');
    await recovers(cluster.gw(1), user, '203.0.113.200');
});

cluster.test('the address budget spans accounts and registrations: every register counts, successful logins cost nothing', async () => {
    const from = '192.0.2.7';
    const maker = '192.0.2.9';
    const real = cluster.name('nat');
    // registrations count, made or not: the budget's worth from one address, then 429
    const names = Array.from({ length: BUDGETS.addr }, (_, i) => cluster.name(`n${i}`));
    for (const n of names) assert.equal((await register(cluster.gw(0), n, PW, maker)).status, 201, `register ${n}`);
    assertLimited(await register(cluster.gw(1), cluster.name('bulk'), PW, maker), 'one register more from the same address');
    // successful logins from one address, more than its budget: none counted
    for (let i = 0; i < BUDGETS.addr + 2; i++) assert.equal((await login(cluster.gw(i % 2), names[i % names.length], PW, from)).status, 200, `login ${i + 1}`);
    assert.equal((await register(cluster.gw(0), real, PW, '192.0.2.10')).status, 201);
    // failures over many names (each under its own budgets) fill the address's
    for (let i = 0; i < BUDGETS.addr; i++) {
        const n = i % 2 ? cluster.name(`ghost${i}`) : names[i];
        assert.equal((await login(cluster.gw(i % 2), n, 'wrong password', from)).status, 401, `failure ${i + 1}`);
    }
    assertLimited(await login(cluster.gw(0), real, PW, from), 'a login from the address past its budget');
    assertLimited(await register(cluster.gw(1), cluster.name('late'), PW, from), 'a register from the address past its budget');
    assert.equal((await register(cluster.gw(1), cluster.name('other'), PW, '192.0.2.8')).status, 201, 'another address registers');
    assert.equal((await login(cluster.gw(0), real, PW, '192.0.2.8')).status, 200, 'and logs in');
    await recovers(cluster.gw(0), real, from);
});

cluster.test('registrations of taken names count against the address', async () => {
    const from = '192.0.2.44';
    const taken = cluster.name('taken');
    await makeUsers(cluster.gw(0), [taken]);
    for (let i = 0; i < BUDGETS.addr; i++) assert.equal((await register(cluster.gw(i % 2), taken, PW, from)).status, 409, `probe ${i + 1}`);
    assertLimited(await register(cluster.gw(0), cluster.name('fresh'), PW, from), 'a register past the budget');
});

cluster.test('an unknown name is answered exactly as a known one: the same 401, the same 429 at the same count', async () => {
    const known = cluster.name('known');
    const ghost = cluster.name('ghost');
    await makeUsers(cluster.gw(0), [known]);
    const seq = async (user, from) => {
        const out = [];
        for (let i = 0; i <= BUDGETS.accountAddr; i++) {
            const r = await login(cluster.gw(0), user, 'wrong password', from);
            out.push([r.status, r.text]);
        }
        return out;
    };
    const a = await seq(known, '198.51.100.77');
    const b = await seq(ghost, '198.51.100.78');
    assert.deepEqual(
        b.map(([s]) => s),
        a.map(([s]) => s),
    );
    assert.deepEqual(
        b.map(([, t]) => t),
        a.map(([, t]) => t),
    );
    assert.equal(a.at(-1)[0], 429);
});

cluster.test('X-Forwarded-For from a peer that is not a trusted proxy is ignored: the peer is the client', async () => {
    // a third gateway trusting no proxy (the default), with the same budgets and Redis
    const g = await cluster.startGateway({ args: throttled.slice(2) });
    const user = cluster.name('spoof');
    await makeUsers(cluster.gw(0), [user]);
    for (let i = 0; i < BUDGETS.accountAddr; i++) {
        const r = await login(g.port, user, 'wrong password', `10.20.30.${i + 1}`);
        assert.equal(r.status, 401, `guess ${i + 1} with a made-up address`);
    }
    assertLimited(await login(g.port, user, PW, '10.20.30.99'), 'a fourth made-up address: still the same client (127.0.0.1)');
    // a trusted gateway sees the socket peer too when no header names another
    assertLimited(await login(cluster.gw(0), user, PW, null), 'through a trusting gateway, without the header');
    assert.equal((await login(cluster.gw(0), user, PW, '10.20.30.99')).status, 200, 'through a trusting gateway, with the header');
});

cluster.test(
    'X-Forwarded-For is read from the right: the first hop that is not a trusted proxy is the client; IPv4-mapped is IPv4; an IPv6 client is its /64',
    async () => {
        const [v4, v6] = [cluster.name('xff'), cluster.name('xff6')];
        await makeUsers(cluster.gw(0), [v4, v6]);
        // what the client wrote itself comes first; the proxy appended the address it saw
        for (let i = 0; i < BUDGETS.accountAddr; i++)
            assert.equal((await login(cluster.gw(0), v4, 'wrong password', `203.0.113.${i + 1}, 198.51.100.50`)).status, 401);
        assertLimited(await login(cluster.gw(0), v4, PW, '198.51.100.50'), 'the same client without the made-up part');
        assertLimited(await login(cluster.gw(1), v4, PW, '198.51.100.50, 127.0.0.1'), 'behind a second trusted hop');
        assertLimited(await login(cluster.gw(1), v4, PW, '::ffff:198.51.100.50'), 'as an IPv4-mapped IPv6 address');
        assert.equal((await login(cluster.gw(0), v4, PW, '198.51.100.51')).status, 200, 'the neighbour');
        for (let i = 0; i < BUDGETS.accountAddr; i++) assert.equal((await login(cluster.gw(1), v6, 'wrong password', `2001:db8:1:2::${i + 5}`)).status, 401);
        assertLimited(await login(cluster.gw(0), v6, PW, '2001:db8:1:2:ffff::99'), 'another address of the same /64');
        assert.equal((await login(cluster.gw(0), v6, PW, '2001:db8:1:3::1')).status, 200, 'the next /64');
        // an entry that is no address: the hop after it (the trusted peer) is the client
        const peer = cluster.name('peer');
        await makeUsers(cluster.gw(0), [peer]);
        for (let i = 0; i < BUDGETS.accountAddr; i++) assert.equal((await login(cluster.gw(0), peer, 'wrong password', `not-an-address-${i}`)).status, 401);
        assertLimited(await login(cluster.gw(0), peer, PW, null), 'counted against the peer');
    },
);

cluster.test('a bad --trusted-proxies entry stops the gateway at start with a one-line error', async () => {
    const bin = cluster.bin('parley-gateway');
    const r = await new Promise((resolve) =>
        execFile(bin, ['--port', '1', '--trusted-proxies', '10.0.0.0/8,not-an-address'], { timeout: 5000 }, (err, stdout, stderr) =>
            resolve({ code: err ? err.code : 0, stderr }),
        ),
    );
    assert.equal(r.code, 2, `exit code 2, got ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, /--trusted-proxies: 'not-an-address' is not an IPv4\/IPv6 address or CIDR/);
});
