// How often one user may open WebSockets on a gateway (--user-open-rate per
// second, bursts of --user-open-burst; docs/protocol.md "Sessions per user"):
// a user who closes and opens sessions in a loop, never over --user-sessions
// at a time, gets 429 {"error":"rate_limited"} with Retry-After once the
// burst is spent, before any socket exists; other users are not affected,
// and the bucket refills at the rate.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Cluster, makeUsers, waitFor } from './lib/cluster.mjs';
import { Client } from './lib/client.mjs';

const BURST = 3;
const cluster = new Cluster('open_rate', { gateways: 1, gatewayArgs: ['--user-open-rate', '1', '--user-open-burst', String(BURST)] });
before(() => cluster.start());
after(() => cluster.stop());

// The upgrade's outcome: a connected client, or the refusal (status, body, headers).
const tryOpen = (token) =>
    Client.connect(cluster.gw(0), token).then(
        (c) => ({ c }),
        (e) => ({ e }),
    );

cluster.test('open and close in a loop: the burst passes, then 429 with Retry-After; another user is served; the bucket refills', async () => {
    const tokens = await makeUsers(cluster.gw(0), ['looper', 'other']);
    for (let k = 0; k < BURST; k++) {
        const { c, e } = await tryOpen(tokens.looper);
        assert.ok(c, `open ${k + 1} of the burst: ${e?.message}`);
        c.close();
    }
    const { c, e } = await tryOpen(tokens.looper);
    if (c) c.close();
    assert.ok(e, 'the open past the burst is refused');
    assert.equal(e.status, 429, `429, got ${e.message}`);
    const body = JSON.parse(e.body);
    assert.equal(body.error, 'rate_limited', 'error code');
    assert.match(body.message, /too many sessions opened/, 'the message says why');
    assert.ok(Number(e.headers['retry-after']) >= 1, `Retry-After: ${e.headers['retry-after']}`);
    const o = await tryOpen(tokens.other);
    assert.ok(o.c, `another user opens meanwhile: ${o.e?.message}`);
    o.c.close();
    // refilled at 1 a second: a later open passes (a condition, not a sleep)
    await waitFor(
        async () => {
            const r = await tryOpen(tokens.looper);
            if (r.c) r.c.close();
            return Boolean(r.c);
        },
        { timeout: 5000, interval: 250, what: 'an open after the bucket refilled' },
    );
    const text = await (await fetch(`http://127.0.0.1:${cluster.gw(0)}/metrics`)).text();
    assert.ok(Number(text.match(/^parley_gateway_open_rate_limited_total (\d+)$/m)?.[1]) >= 1, 'counted in /metrics');
});
