// The work behind a login (issue 13; docs/protocol.md "Login throttling"): an unknown name
// costs the same argon2id verification as a known one (medians of login times compared, no
// absolute time), and the password workers (--password-workers) take at most
// --password-queue-addr jobs of one client address at a time, so a flood of logins from one
// address neither makes another address's login fail nor makes it wait for the flood.
//
// The attempt budgets are off here (0) so that every login reaches the workers; the gateway
// trusts 127.0.0.1, so X-Forwarded-For names each request's client address.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Cluster, makeUsers } from './lib/cluster.mjs';

const PW = 'correct horse battery';
const WORKERS = 2;
const PER_ADDR = 4;
const cluster = new Cluster('login_work', {
    gateways: 1,
    gatewayArgs: [
        '--trusted-proxies',
        '127.0.0.1',
        '--throttle-addr',
        '0',
        '--throttle-account',
        '0',
        '--throttle-account-addr',
        '0',
        '--password-workers',
        String(WORKERS),
        '--password-queue-addr',
        String(PER_ADDR),
    ],
});
before(() => cluster.start());
after(() => cluster.stop());

async function login(username, password, from) {
    const headers = { 'content-type': 'application/json' };
    if (from) headers['x-forwarded-for'] = from;
    const started = performance.now();
    const res = await fetch(`http://127.0.0.1:${cluster.gw(0)}/api/login`, { method: 'POST', headers, body: JSON.stringify({ username, password }) });
    const text = await res.text();
    let body = null;
    try {
        body = JSON.parse(text);
    } catch {
        /* not JSON */
    }
    return { status: res.status, body, text, retryAfter: res.headers.get('retry-after'), at: performance.now(), ms: performance.now() - started };
}

const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

cluster.test('an unknown name takes as long as a known one with a wrong password (medians within a factor of 3)', async (t) => {
    const known = cluster.name('known');
    await makeUsers(cluster.gw(0), [known]);
    const k = [];
    const u = [];
    for (let i = 0; i < 15; i++) {
        // interleaved, so a slow moment of the machine hits both
        const a = await login(known, 'wrong password', '198.51.100.10');
        const b = await login(cluster.name('nobody'), 'wrong password', '198.51.100.10');
        assert.equal(a.status, 401);
        assert.equal(b.status, 401);
        assert.equal(b.text, a.text, 'the same answer');
        k.push(a.ms);
        u.push(b.ms);
    }
    const mk = median(k);
    const mu = median(u);
    const ratio = mu / mk;
    t.diagnostic(`login medians: known name ${mk.toFixed(1)} ms, unknown ${mu.toFixed(1)} ms (ratio ${ratio.toFixed(2)}, 15 each)`);
    assert.ok(ratio > 1 / 3 && ratio < 3, `median known ${mk.toFixed(1)} ms, unknown ${mu.toFixed(1)} ms: ratio ${ratio.toFixed(2)} not within 1/3..3`);
});

cluster.test("a flood of logins from one address: the others' logins get through at once, the flood's excess gets 429", async () => {
    const user = cluster.name('bystander');
    const target = cluster.name('target');
    await makeUsers(cluster.gw(0), [user, target]);
    const FLOOD = 40;
    const flooder = '203.0.113.66';
    // the flood: FLOOD wrong logins at once, each sent again (without waiting) until it
    // gets its 401, so FLOOD verifications must run in all
    let done401 = 0;
    let limited = 0;
    const one = async () => {
        for (;;) {
            const r = await login(target, 'wrong password', flooder);
            if (r.status === 401) {
                done401++;
                return r.at;
            }
            assert.equal(r.status, 429, `the flood: 401 or 429, got ${r.status} ${r.text}`);
            assert.equal(r.body?.error, 'rate_limited');
            assert.equal(r.retryAfter, '1');
            limited++;
            await new Promise((res) => setTimeout(res, 10)); // a client's pacing, not a wait for a condition
        }
    };
    const flood = Array.from({ length: FLOOD }, one);
    // once the flood holds the workers, two other addresses log in
    await new Promise((res) => setImmediate(res));
    const [a, b] = await Promise.all([login(user, PW, '192.0.2.1'), login(user, PW, '192.0.2.2')]);
    const before401 = done401;
    const ends = await Promise.all(flood);
    for (const r of [a, b]) assert.equal(r.status, 200, `the bystander's login: ${r.status} ${r.text}`);
    assert.ok(limited > 0, "the flood's excess was refused with 429");
    // the bystanders waited for at most the few jobs of the flood ahead of them, not for the flood
    const last = Math.max(...ends);
    assert.ok(Math.max(a.at, b.at) < last, 'the bystanders were answered before the flood ended');
    assert.ok(before401 <= FLOOD / 2, `${before401} of the flood's ${FLOOD} verifications ran before the bystanders were answered`);
});
