// Bounded work per send (issue 12): a message to a group of more members than
// the router's --fanout-chunk is stored and queued by `send`, then fanned out
// by `fanout` calls of at most chunk + 1 member writes each (docs/internals.md,
// "Bounded work"). Real redis, router(s) and two gateways; a 5,000-member
// group (the default --group-max):
// - a burst from two members: every member's inbox gets every message once,
//   in id order; the connected members get each once, in order; each ack comes
//   after every inbox has it; the fanout calls are as many as the chunks (a
//   structural bound read from SLOWLOG, not a timing); a bystander's 1:1 is
//   served meanwhile (its ack time is a diagnostic);
//   in steps (PARLEY_SEND_STEPS=1, a cluster) each message's member steps are a fork (no queued
//   jobs there: docs/internals.md "The send path on a cluster") that the runner lets out 256
//   steps at a time, in turn with other calls' steps ("Scripts in steps", dispatch), so the
//   bystander gets the same 5 s (it waited up to 8.9 s behind ~100,000 member steps before); the
//   fan-out-call counts do not apply; the inbox checks are one EVAL on one node (not for
//   PARLEY_TEST_REDIS=cluster3);
// - a cid retried while its fan-out is queued: one message, one ack;
// - the router SIGKILLed mid-fan-out: the next router finishes every job,
//   nothing lost or doubled.
// The budgets and the group-change throttle (one change of a 64+ group per
// user per second: the group is built with 6 frames) are lifted here (this
// file is about the fan-out); their defaults are tested in
// send_limits.test.mjs, throttles.test.mjs and scripts.test.mjs.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, brief, mintToken } from './lib/client.mjs';
import { Cluster, NO_QUEUED_FANOUTS, SECRET, SEND_STEPS, waitFor } from './lib/cluster.mjs';

const MEMBERS = 5000;
const CHUNK = 250;
const LIVE = 30; // members with a session, over both gateways
const cluster = new Cluster('fanout', {
    routerArgs: ['--fanout-chunk', String(CHUNK), '--user-fanout-rate', '0', '--user-byte-rate', '0', '--user-rate', '0'],
    gatewayArgs: ['--group-op-interval', '0'],
});
const PREFIX = 'f';
const names = Array.from({ length: MEMBERS }, (_, i) => `${PREFIX}${i}`);
const token = (name) => mintToken(SECRET, name, Math.floor(Date.now() / 1000) + 3600);
let group;
let live = [];
before(async () => {
    await cluster.start();
    const r = await cluster.cli(['bulk-users', String(MEMBERS + 2), '--prefix', PREFIX, '--password', 'bulk password 1'], 120000);
    assert.ok(r.ok, `bulk-users: ${r.stderr}`);
});
after(() => cluster.stop());

// every member's inbox entries of `g`, as ids, checked in one EVAL: the
// members whose ids are not exactly `ids` (in that order), at most 5 listed
async function inboxesWithout(g, ids) {
    const bad = await cluster.redis(
        'EVAL',
        'local want, out = cjson.decode(ARGV[3]), {} ' +
            'for i = 0, tonumber(ARGV[2]) - 1 do ' +
            "local u = ARGV[1] .. i local got = {} for _, e in ipairs(redis.call('LRANGE', 'parley:{u:' .. u .. '}:inbox', 0, -1)) do " +
            'local m = cmsgpack.unpack(e) if (m.to or m.w) == ARGV[4] and not m.k then got[#got + 1] = m.id end end ' +
            'local ok = #got == #want for j = 1, #want do ok = ok and got[j] == want[j] end ' +
            "if not ok and #out < 5 then out[#out + 1] = u .. ': ' .. table.concat(got, ',') end end return out",
        '0',
        PREFIX,
        String(MEMBERS),
        JSON.stringify(ids),
        group,
    );
    return bad;
}

// how many members' inboxes lack message id (among their newest 40 entries)
async function inboxesLacking(id) {
    return cluster.redis(
        'EVAL',
        'local n = 0 for i = 0, tonumber(ARGV[2]) - 1 do local found = false ' +
            "for _, e in ipairs(redis.call('LRANGE', 'parley:{u:' .. ARGV[1] .. i .. '}:inbox', -40, -1)) do " +
            'if cmsgpack.unpack(e).id == tonumber(ARGV[3]) then found = true end end ' +
            'if not found then n = n + 1 end end return n',
        '0',
        PREFIX,
        String(MEMBERS),
        String(id),
    );
}

async function ensureGroup() {
    if (group) return;
    const A = await Client.connect(cluster.gw(0), token(names[0]), { name: 'creator' });
    group = `#${cluster.name('huge')}`;
    // a group frame names at most 1,000 members: create, then add the rest
    let f;
    for (let i = 1; i < MEMBERS; i += 999) {
        A.send({ kind: 'group', op: i === 1 ? 'create' : 'add', name: group, members: names.slice(i, i + 999) });
        f = await A.next((x) => (x.kind === 'group' && x.name === group) || x.kind === 'error', 30000);
        assert.equal(f.kind, 'group', brief(f));
    }
    assert.equal(f.members.length, MEMBERS);
    await A.close();
}

async function connectLive() {
    live = [];
    for (let i = 1; i <= LIVE; i++) live.push(await Client.connect(cluster.gw(i % 2), token(names[i * 97]), { name: names[i * 97] }));
}

// calls of each command so far (INFO commandstats: commands run by scripts count too)
async function commandCalls() {
    const info = await cluster.redis('INFO', 'commandstats');
    const out = {};
    for (const m of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+),usec=(\d+)/gm)) {
        out[m[1]] = Number(m[2]);
        out[`${m[1]}_usec`] = Number(m[3]);
    }
    return out;
}

cluster.test(
    `a burst to a ${MEMBERS}-member group: every inbox gets every message once in id order, acks after, in steps of ${CHUNK}`,
    { timeout: 180000 },
    async (t) => {
        await ensureGroup();
        await connectLive();
        const A = await Client.connect(cluster.gw(0), token(names[0]), { name: 'A' });
        const S = await Client.connect(cluster.gw(1), token(names[1]), { name: 'S' });
        const X = await Client.connect(cluster.gw(0), token(`${PREFIX}${MEMBERS}`), { name: 'bystander' });
        const Y = await Client.connect(cluster.gw(1), token(`${PREFIX}${MEMBERS + 1}`), { name: 'bystander2' });
        await cluster.redis('CONFIG', 'SET', 'slowlog-log-slower-than', '5000');
        await cluster.redis('SLOWLOG', 'RESET');
        t.after(() => cluster.redis('CONFIG', 'SET', 'slowlog-log-slower-than', '10000'));
        const calls0 = await commandCalls();

        const N = 20;
        const t0 = performance.now();
        for (let i = 0; i < N; i++) (i % 2 ? S : A).send({ kind: 'text', to: group, data: `burst ${i}`, cid: `b${i}` });
        // a bystander's 1:1 while the fan-out runs
        const tb = performance.now();
        X.send({ kind: 'text', to: `${PREFIX}${MEMBERS + 1}`, data: 'meanwhile', cid: 'x1' });
        const bys = await X.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === 'x1', 5000);
        assert.equal(bys.kind, 'ack', brief(bys));
        const bystanderMs = performance.now() - tb;
        t.diagnostic(`bystander acked after ${bystanderMs.toFixed(1)} ms`);
        await Y.next({ kind: 'text', id: bys.id }, 10000);
        // the first ack: by then every member's inbox has its message
        const first = await A.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === 'b0', 60000);
        assert.equal(first.kind, 'ack', brief(first));
        assert.equal(await inboxesLacking(first.id), 0, 'at the ack, every inbox has the message');
        const acks = [first];
        for (let i = 1; i < N; i++) {
            const c = i % 2 ? S : A;
            acks.push(await c.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === `b${i}`, 60000));
        }
        const allMs = performance.now() - t0;
        assert.ok(
            acks.every((a) => a.kind === 'ack'),
            acks
                .filter((a) => a.kind !== 'ack')
                .map(brief)
                .join(', '),
        );
        // each sender's messages get increasing ids (two sockets: no order between them)
        for (const [who, mine] of [
            ['A', acks.filter((_, i) => i % 2 === 0)],
            ['S', acks.filter((_, i) => i % 2 === 1)],
        ])
            assert.ok(
                mine.every((a, i) => i === 0 || a.id > mine[i - 1].id),
                `${who}'s ids increase: ${mine.map((a) => a.id)}`,
            );
        const ids = acks.map((a) => a.id).sort((x, y) => x - y);
        assert.deepEqual(await inboxesWithout(group, ids), [], 'every inbox holds every message once, in id order');
        for (const c of live) {
            for (const id of ids) await c.next({ kind: 'text', id }, 20000);
            const got = c.all({ kind: 'text', to: group }).map((f) => f.id);
            assert.deepEqual(got, ids, `${c.name}: each message once, in id order`);
        }
        // the structural bound: each message's fan-out took one call per chunk of members (each
        // step's own bound, chunk + 1 writes, is asserted from its replies in scripts.test.mjs)
        const calls1 = await commandCalls();
        const fcall = (calls1.fcall || 0) - (calls0.fcall || 0);
        const writes = (calls1.rpush || 0) - (calls0.rpush || 0); // inbox appends (+ one queue push per message)
        const steps = Math.ceil((MEMBERS - 1) / CHUNK);
        if (!SEND_STEPS) assert.ok(fcall >= N * steps + 1, `at least ${N} x ${steps} fanout calls (chunks of ${CHUNK}) and a send: ${fcall} FCALLs in all`);
        assert.ok(writes >= N * MEMBERS, `every member written for every message: ${writes} RPUSH`);
        const slow = (await cluster.redis('SLOWLOG', 'GET', '10')).map((e) => `${e[3][0]} ${String(e[3][1]).slice(0, 14)} ${e[2]} us`);
        t.diagnostic(
            `${N} messages to ${MEMBERS} members: all acked after ${allMs.toFixed(0)} ms, ${fcall} FCALLs ` +
                `(${((calls1.fcall_usec - (calls0.fcall_usec || 0)) / fcall).toFixed(0)} us each on average), ` +
                `${(writes / (N * steps)).toFixed(0)} inbox writes per chunk-sized step; bystander acked after ` +
                `${bystanderMs.toFixed(1)} ms; commands over 5 ms: ${slow.join('; ') || 'none'}`,
        );
        assert.deepEqual(await cluster.redis('SMEMBERS', 'parley:fanouts'), [], 'nothing left queued');
        await A.expectNone({ kind: 'ack', cid: 'b0' }, 50, 'a second ack');
    },
);

cluster.test('a cid retried while its fan-out is queued: one message, one ack', { timeout: 60000, skip: NO_QUEUED_FANOUTS }, async () => {
    await ensureGroup();
    const A = await Client.connect(cluster.gw(0), token(names[2]), { name: 'A' });
    const before = Number(await cluster.redis('ZCARD', `parley:{c:${group}}:history`));
    for (let i = 0; i < 3; i++) A.send({ kind: 'text', to: group, data: 'once', cid: 'retry-1' });
    const ack = await A.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === 'retry-1', 30000);
    assert.equal(ack.kind, 'ack', brief(ack));
    // the two retries were answered "pending" (no frame) or, once acked, with the same ack
    const hist = await cluster.redis('ZCARD', `parley:{c:${group}}:history`);
    assert.equal(Number(hist), before + 1, 'one message stored');
    await A.expectNone((x) => x.kind === 'ack' && x.cid === 'retry-1' && x.id !== ack.id, 300, 'an ack with another id');
    // the retries came while it was queued (one batch): they move the ack, they do not repeat it
    await A.expectNone({ kind: 'ack', cid: 'retry-1' }, 300, 'a second ack');
    const member = await cluster.redis(
        'EVAL',
        "local n = 0 for _, e in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do if cmsgpack.unpack(e).id == tonumber(ARGV[1]) then n = n + 1 end end return n",
        '1',
        `parley:{u:${names[4000]}}:inbox`,
        String(ack.id),
    );
    assert.equal(member, 1, "a member's inbox has it once");
});

cluster.test(
    'the router SIGKILLed mid-fan-out: the next one finishes every job, nothing lost or doubled',
    { timeout: 120000, skip: NO_QUEUED_FANOUTS },
    async (t) => {
        await ensureGroup();
        const A = await Client.connect(cluster.gw(0), token(names[3]), { name: 'A' });
        const queue = `parley:{g:${group}}:fanout`;
        const N = 12;
        const start = Number(await cluster.redis('GET', 'parley:ids'));
        for (let i = 0; i < N; i++) A.send({ kind: 'text', to: group, data: `k ${i}`, cid: `k${i}` });
        // every message stored (queued) and the head job part-way: some members written, some not
        const progress = async () => {
            const head = await cluster.redis('LINDEX', queue, 0);
            if (!head) return null;
            const todo = Number(await cluster.redis('SCARD', `parley:{g:${group}}:todo:${head}`));
            return { head, todo, queued: Number(await cluster.redis('LLEN', queue)) };
        };
        await waitFor(async () => Number(await cluster.redis('GET', 'parley:ids')) >= start + N, { timeout: 20000, interval: 5, what: `${N} messages stored` });
        const mid = await waitFor(
            async () => {
                const p = await progress();
                return p && p.todo > 0 && p.todo < MEMBERS - 1 && p;
            },
            { timeout: 20000, interval: 2, what: 'a fan-out part-way' },
        );
        await cluster.killRouter('SIGKILL');
        const at = await progress();
        assert.ok(at && at.queued >= 1, `fan-outs still queued when the router died: ${JSON.stringify(at)}`);
        t.diagnostic(
            `killed the router with ${at.queued} of ${N} fan-outs queued, job ${at.head} with ${at.todo} members to go (seen part-way: ${JSON.stringify(mid)})`,
        );
        await cluster.startRouter();
        const acks = [];
        for (let i = 0; i < N; i++) acks.push(await A.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === `k${i}`, 60000));
        assert.ok(
            acks.every((a) => a.kind === 'ack'),
            acks
                .filter((a) => a.kind !== 'ack')
                .map(brief)
                .join(', '),
        );
        const all = (await cluster.redis('ZRANGEBYSCORE', `parley:{c:${group}}:history`, '-inf', '+inf', 'WITHSCORES'))
            .filter((_, i) => i % 2 === 1)
            .map(Number);
        const ids = acks.map((a) => a.id);
        assert.deepEqual(
            all.filter((id) => id > start),
            ids,
            'the history holds each message once',
        );
        // every inbox: everything of the group so far, once each, in id order
        assert.deepEqual(await inboxesWithout(group, all), [], 'every inbox holds every message once, in id order');
        assert.equal(Number(await cluster.redis('EXISTS', queue)), 0, 'the queue is done');
    },
);
