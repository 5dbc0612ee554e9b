// A 1,000-member group (issue 3): one send updates every member's inbox
// (in --fanout-chunk steps: more members than a chunk, docs/internals.md
// "Bounded work per call"; fanout.test.mjs tests the steps at 5,000),
// reaches the connected members on both gateways once, and leaves the loops
// responsive. The time it took is logged (a diagnostic, never asserted:
// speed is measured by parley-bench, docs/benchmarks.md).
// Cluster: redis, router, gw1, gw2 (its own, so 1,000 users do not change the
// "everyone is a contact" mode of the other files).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, brief, healthz, mintToken } from './lib/client.mjs';
import { Cluster, SECRET } from './lib/cluster.mjs';

const MEMBERS = 1000;
const CONNECTED = 40; // members with a live session, split over both gateways
const cluster = new Cluster('group_large');
let prefix;
before(async () => {
    await cluster.start();
    prefix = `big${Date.now() % 100000}x`;
    const r = await cluster.cli(['bulk-users', String(MEMBERS), '--prefix', prefix, '--password', 'bulk password 1'], 60000);
    assert.ok(r.ok, `bulk-users: ${r.stderr}`);
});
after(() => cluster.stop());

const token = (name) => mintToken(SECRET, name, Math.floor(Date.now() / 1000) + 3600);

cluster.test(`a send to a ${MEMBERS}-member group reaches every inbox, each connected member once`, async (t) => {
    const names = Array.from({ length: MEMBERS }, (_, i) => `${prefix}${i}`);
    const A = await Client.connect(cluster.gw(0), token(names[0]), { name: 'creator' });
    const g = `#${cluster.name('big')}`;
    const t0 = performance.now();
    A.send({ kind: 'group', op: 'create', name: g, members: names.slice(1) });
    const created = await A.next((x) => (x.kind === 'group' && x.name === g) || x.kind === 'error', 30000);
    assert.equal(created.kind, 'group', brief(created));
    assert.equal(created.members.length, MEMBERS);
    t.diagnostic(`create ${MEMBERS} members: ${(performance.now() - t0).toFixed(1)} ms`);

    const live = [];
    for (let i = 1; i <= CONNECTED; i++) live.push(await Client.connect(cluster.gw(i % 2), token(names[i]), { name: names[i] }));

    const t1 = performance.now();
    A.send({ kind: 'text', to: g, data: 'hello, everyone', cid: 'big-1' });
    const ack = await A.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === 'big-1', 30000);
    const ackMs = performance.now() - t1;
    assert.equal(ack.kind, 'ack', brief(ack));
    await Promise.all(live.map((c) => c.next({ kind: 'text', id: ack.id }, 30000)));
    const lastMs = performance.now() - t1;
    t.diagnostic(
        `send to ${MEMBERS} members: ack after ${ackMs.toFixed(1)} ms, ` +
            `${CONNECTED} connected members (2 gateways) all delivered after ${lastMs.toFixed(1)} ms`,
    );

    // every member's inbox ends with the message (one EVAL reads all 1,000)
    const missing = await cluster.redis(
        'EVAL',
        'local bad = 0 for i = 0, tonumber(ARGV[2]) - 1 do ' +
            "local e = redis.call('LINDEX', 'parley:{u:' .. ARGV[1] .. i .. '}:inbox', -1) " +
            'if not e or cmsgpack.unpack(e).id ~= tonumber(ARGV[3]) then bad = bad + 1 end end return bad',
        '0',
        prefix,
        String(MEMBERS),
        String(ack.id),
    );
    assert.equal(Number(missing), 0, 'inboxes without the message');
    const unread = await cluster.redis('HGET', `parley:{u:${names[MEMBERS - 1]}}:unread`, g);
    assert.equal(Number(unread), 1, 'an offline member counts it unread');

    for (const c of live) await c.expectNone({ kind: 'text', to: g }, 20, 'a second copy');
    // the loops stayed responsive: both gateways answer, a 1:1 still flows
    assert.equal(await healthz(cluster.gw(0)), 200);
    assert.equal(await healthz(cluster.gw(1)), 200);
    live[0].send({ kind: 'text', to: names[2], data: 'after the burst', cid: 'big-2' });
    const a2 = await live[0].next((x) => x.kind === 'ack' && x.cid === 'big-2', 10000);
    await live[1].next({ kind: 'text', id: a2.id });

    // a second send, now that the scripts are warm
    const t2 = performance.now();
    A.send({ kind: 'text', to: g, data: 'again', cid: 'big-3' });
    const ack3 = await A.next((x) => x.kind === 'ack' && x.cid === 'big-3', 30000);
    await Promise.all(live.map((c) => c.next({ kind: 'text', id: ack3.id }, 30000)));
    t.diagnostic(`second send: all ${CONNECTED} connected members delivered after ${(performance.now() - t2).toFixed(1)} ms`);
});
