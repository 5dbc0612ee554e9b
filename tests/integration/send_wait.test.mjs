// Durable acks (issue 15): the router's --wait-replicas N runs send in steps (send_step.lua) and
// WAITs after every step, so an ack leaves only once every write of its message reached N
// replicas. One Redis with one replica (a real redis-server --replicaof): acks come while the
// replica follows; with the replica stopped nothing is acked (the gateway answers nothing: the
// client keeps its message pending and retries by cid), and once it is back the retries are
// acked, each message stored once.
// Cluster: redis + its replica, router (--wait-replicas 1 --wait-timeout 300), gw1, gw2.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, brief, sendAck } from './lib/client.mjs';
import { Cluster, RedisReplica, redisCli } from './lib/cluster.mjs';

const cluster = new Cluster('send_wait', { routerArgs: ['--wait-replicas', '1', '--wait-timeout', '300'] });
const replica = new RedisReplica(cluster);

before(async () => {
    await cluster.start();
    await replica.start();
});
after(async () => {
    await replica.stop();
    await cluster.stop();
});

let n = 0;
const cid = () => `sw-${++n}`;

cluster.test('with a replica following, texts are acked (each after WAIT) and reach the recipient once', async () => {
    const [a, b] = await cluster.users(['swa', 'swb']);
    const A = await Client.connect(cluster.gw(0), a.token);
    const B = await Client.connect(cluster.gw(1), b.token);
    const ids = [];
    for (let i = 0; i < 20; i++) ids.push((await sendAck(A, b.name, `w${i}`, cid())).id);
    for (let i = 0; i < 20; i++) {
        const f = await B.next((x) => x.kind === 'text' && x.data === `w${i}`);
        assert.equal(f.id, ids[i], brief(f));
    }
    // the replica holds what was acked
    const hist = await redisCli(replica.port, ['ZCARD', `parley:{c:${[a.name, b.name].sort().join('|')}}:history`]);
    assert.equal(hist.stdout, '20', 'the replica has every acked message');
    await A.close();
    await B.close();
});

cluster.test('replica stopped: no ack; replica back: the retry is acked once, stored once', async () => {
    const [a, b] = await cluster.users(['swc', 'swd']);
    const A = await Client.connect(cluster.gw(0), a.token);
    await sendAck(A, b.name, 'before', cid());
    await replica.stop();
    const c = cid();
    A.send({ kind: 'text', to: b.name, data: 'unreplicated', cid: c });
    const early = await A.next((x) => x.kind === 'ack' && x.cid === c, 1500).catch(() => null);
    assert.equal(early, null, `no ack while no replica has it: ${brief(early)}`);
    await replica.start();
    // the client's retry (same cid): stored once, acked
    const ack = await sendAck(A, b.name, 'unreplicated', c);
    const conv = `parley:{c:${[a.name, b.name].sort().join('|')}}:history`;
    const texts = (await cluster.redisBuffers('ZRANGE', conv, 0, -1)).map((x) => x.toString());
    assert.equal(texts.filter((t) => t.includes('unreplicated')).length, 1, 'stored once');
    const B = await Client.connect(cluster.gw(1), b.token);
    const hello = B.hello;
    assert.ok(hello, 'hello');
    const f = await B.next((x) => x.kind === 'text' && x.data === 'unreplicated');
    assert.equal(f.id, ack.id);
    await A.close();
    await B.close();
});
