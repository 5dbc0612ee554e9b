// Redis restarts (SIGTERM, then started again on the same port and dir with
// appendonly yes): gateways report 503 then 200, clients reconnect and work,
// nothing acknowledged is lost; while Redis is down nothing is acked.
import assert from 'node:assert/strict';
import { decode } from '@msgpack/msgpack';
import { after, before } from 'node:test';
import { Client, brief, healthz, sendReliably, sendStream } from './lib/client.mjs';
import { Cluster, waitFor } from './lib/cluster.mjs';

// a generous rate limit: the stream test retries every pending message during the outage
const cluster = new Cluster('redis_restart', { gatewayArgs: ['--rate', '1000', '--burst', '1000'] });
before(() => cluster.start());
after(() => cluster.stop());

const users = (...bases) => cluster.users(bases);

async function allHealthz(status, timeout, phase) {
    for (let i = 0; i < cluster.gateways.length; i++) {
        const g = cluster.gateways[i];
        let last;
        await waitFor(
            async () => {
                if (!g.proc.running) throw new Error(`${g.id} exited: ${JSON.stringify(g.proc.exit)}`);
                last = await healthz(g.port);
                return last === status;
            },
            { timeout, what: `${g.id} /healthz ${status} ${phase} (last answer ${last})` },
        );
    }
}

async function restartRedis() {
    const ex = await cluster.stopRedis('SIGTERM');
    assert.equal(ex.code, 0, `redis-server exit after SIGTERM: ${JSON.stringify(ex)}`);
    await allHealthz(503, 5000, 'while Redis is down');
    await cluster.startRedis();
    await allHealthz(200, 20000, 'after Redis is back');
}

cluster.test('Redis restart: /healthz goes 503 then 200, clients reconnect and talk, nothing acked is lost', async () => {
    const [a, b] = await users('a', 'b');
    const A = await Client.connect(cluster.gw(0), a.token, { name: 'A@gw1' });
    const B = await Client.connect(cluster.gw(1), b.token, { name: 'B@gw2' });
    const acked = [];
    for (let i = 0; i < 5; i++) acked.push((await sendReliably(A, { kind: 'text', to: b.name, data: `before ${i}`, cid: `pre-${i}` })).id);
    for (const id of acked) await B.next({ kind: 'text', id });

    await restartRedis();

    const inbox = (await cluster.redisBuffers('LRANGE', `parley:{u:${b.name}}:inbox`, '0', '-1')).map((x) => decode(x));
    assert.deepEqual(
        inbox.map((e) => e.id),
        acked,
        `parley:{u:${b.name}}:inbox after the Redis restart`,
    );
    const history = await cluster.redis('ZCARD', `parley:{c:${[a.name, b.name].sort().join('|')}}:history`);
    assert.equal(history, 5, 'conversation history kept');

    // clients reconnect (each to the other gateway) and talk both ways
    await A.close();
    await B.close();
    const A2 = await Client.connect(cluster.gw(1), a.token, { name: 'A@gw2' });
    const B2 = await Client.connect(cluster.gw(0), b.token, { name: 'B@gw1' });
    assert.equal(B2.hello.seq, inbox[inbox.length - 1].seq, `B's seq survives the restart: ${brief(B2.hello)}`);
    const ab = await sendReliably(A2, { kind: 'text', to: b.name, data: 'after restart', cid: 'post-1' });
    const t1 = await B2.next({ kind: 'text', id: ab.id });
    assert.equal(t1.data, 'after restart');
    assert.equal(t1.seq, B2.hello.seq + 1, 'seq continues after the restart');
    assert.ok(ab.id > acked[acked.length - 1], `ids keep increasing across the restart: ${acked} then ${ab.id}`);
    const ba = await sendReliably(B2, { kind: 'text', to: a.name, data: 'reply', cid: 'post-2' });
    await A2.next({ kind: 'text', id: ba.id });
});

cluster.test('while Redis is down a send gets error unavailable (never an ack), and the retry after it is back is delivered once', async () => {
    const [a, b] = await users('a', 'b');
    const A = await Client.connect(cluster.gw(0), a.token, { name: 'A@gw1' });
    const ex = await cluster.stopRedis('SIGTERM');
    assert.equal(ex.code, 0, `redis-server exit: ${JSON.stringify(ex)}`);
    await allHealthz(503, 5000, 'while Redis is down');
    const cid = 'down-1';
    let outcome;
    if (A.isOpen) {
        A.send({ kind: 'text', to: b.name, data: 'during the outage', cid });
        const f = await A.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === cid, 5000).catch((e) => {
            if (!A.isOpen) return null; // the gateway dropped the socket: also honest
            throw e;
        });
        if (f) {
            assert.equal(f.kind, 'error', `a send while Redis is down must not be acked: ${brief(f)}`);
            assert.equal(f.code, 'unavailable', `expected error unavailable: ${brief(f)}`);
        }
        outcome = f ? 'unavailable' : 'socket closed';
    } else {
        outcome = 'socket closed before sending';
    }
    await cluster.startRedis();
    await allHealthz(200, 20000, 'after Redis is back');
    const A2 = A.isOpen ? A : await Client.connect(cluster.gw(0), a.token, { name: 'A@gw1-again' });
    const ack = await sendReliably(A2, { kind: 'text', to: b.name, data: 'during the outage', cid });
    const B = await Client.connect(cluster.gw(1), b.token, { name: 'B@gw2' });
    const t = await B.next({ kind: 'text' });
    assert.equal(t.id, ack.id, `offline push of the retried message (${outcome}): ${brief(t)}`);
    await B.expectNone({ kind: 'text' }, 400, 'a second copy');
    assert.equal(await cluster.redis('LLEN', `parley:{u:${b.name}}:inbox`), 1, 'one inbox entry');
});

cluster.test('SIGKILL Redis under a message stream and restart it: every acked message is kept once and delivered', async () => {
    const [a, b] = await users('a', 'b');
    const A = await Client.connect(cluster.gw(0), a.token, { name: 'A@gw1' });
    const B = await Client.connect(cluster.gw(1), b.token, { name: 'B@gw2' });
    const N = 100;
    let restarted;
    const { msgs, problems, unavailable, timeouts } = await sendStream(A, b.name, N, {
        prefix: 'rk',
        paceMs: 10,
        timeoutMs: 30000,
        beforeSend: async (i) => {
            if (i !== 30) return;
            await cluster.stopRedis('SIGKILL');
            restarted = cluster.startRedis(); // same port and dir, at once
        },
    });
    await restarted;
    console.error(`redis SIGKILL: ${N} messages, ${unavailable} unavailable answers, ${timeouts} timeout retries`);
    assert.deepEqual(problems, [], 'ack problems');
    const acked = msgs.map((m) => m.id);
    assert.equal(new Set(acked).size, N, `${N} cids, ${N} distinct ids`);

    // durable: the inbox holds every acked id, once
    const inbox = (await cluster.redisBuffers('LRANGE', `parley:{u:${b.name}}:inbox`, '0', '-1')).map((x) => decode(x).id);
    const dupInInbox = inbox.filter((id, i) => inbox.indexOf(id) !== i);
    assert.deepEqual(dupInInbox, [], 'ids stored twice in the inbox');
    assert.deepEqual(
        acked.filter((id) => !inbox.includes(id)),
        [],
        'acked ids missing from the inbox after the Redis crash',
    );

    // delivered: live, then a sync from the last seq seen (reconnecting if the gateway closed B)
    const live = B.all({ kind: 'text' });
    const lastSeq = Math.max(B.hello.seq, ...live.map((t) => t.seq));
    let R = B;
    if (!B.isOpen) R = await Client.connect(cluster.gw(0), b.token, { name: 'B@gw1' });
    R.send({ kind: 'sync', after: lastSeq, epoch: B.hello.epoch });
    const end = await R.next({ kind: 'sync' }, 10000);
    assert.equal(
        end.recovered,
        true,
        `sync after the Redis crash: ${brief(end)} (B ${B === R ? 'stayed connected' : `was closed ${JSON.stringify(B.closeInfo)}`})`,
    );
    const received = [...B.all({ kind: 'text' }), ...(R === B ? [] : R.all({ kind: 'text' }))];
    const got = [...new Set(received.map((t) => t.id))]; // de-duplicated by id, as the contract allows
    assert.deepEqual(
        acked.filter((id) => !got.includes(id)),
        [],
        'acked ids B never received',
    );
    assert.deepEqual(
        got.filter((id) => !acked.includes(id)),
        [],
        'ids B received that were never acked',
    );
    // id order is a per-session guarantee (protocol.md, guarantee 3): check it on
    // the live session. A reconnected session mixes offline push, live and
    // the sync it asked for, and a session closed with 1012 (the inbox seq went
    // back: Redis lost its last write) is told to start over.
    const liveIds = [...new Set(B.all({ kind: 'text' }).map((t) => t.id))];
    for (let i = 1; i < liveIds.length; i++)
        assert.ok(liveIds[i] > liveIds[i - 1], `B receives ids in increasing order; at ${i}: ${liveIds[i - 1]} then ${liveIds[i]}`);
});
