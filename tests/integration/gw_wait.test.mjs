// Durable security writes (issue 15, tester15a F4): the gateway's --wait-replicas N runs block,
// group remove, logout / logout-all and a password change with a WAIT after every step, and
// answers only after it, so a failover cannot undo a block (or a revocation) the client was
// told about. One Redis with one replica (a real redis-server --replicaof, as
// send_wait.test.mjs): while the replica follows, each is answered and the replica has it;
// with the replica stopped each is refused: `error unavailable` on the socket (no `block` or
// `group` frame), 503 JSON over HTTP.
// Cluster: redis + its replica, router, gw1, gw2 (both --wait-replicas 1 --wait-timeout 300).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, api, brief, healthz } from './lib/client.mjs';
import { Cluster, RedisReplica, redisCli } from './lib/cluster.mjs';

const ANSWER_MS = 3000; // the bound on every answer (the WAIT gives 300 ms per step)
const PW = 'correct horse battery'; // makeUsers' password

const cluster = new Cluster('gw_wait', { redis: 'one', gatewayArgs: ['--wait-replicas', '1', '--wait-timeout', '300'] });
const replica = new RedisReplica(cluster);
// a POST with the token as Bearer (lib/client.mjs api)
const post = (port, path, token, body) => api(port, 'POST', path, { token, body });

before(async () => {
    await cluster.start();
    await replica.start();
});
after(async () => {
    await replica.stop();
    await cluster.stop();
});

// c blocks user: the first `block` frame or error on c
async function block(c, user) {
    c.send({ kind: 'block', user, on: true });
    return c.next((x) => x.kind === 'error' || (x.kind === 'block' && x.user === user), ANSWER_MS);
}

// c (the owner) removes user from g: the first group frame of it or error on c
async function remove(c, g, by, user) {
    c.send({ kind: 'group', op: 'remove', name: g, members: [user] });
    return c.next((x) => x.kind === 'error' || (x.kind === 'group' && x.name === g && x.op === 'remove' && x.by === by), ANSWER_MS);
}

const onReplica = (...args) => redisCli(replica.port, args).then((r) => r.stdout);

cluster.test('replica following: block, group remove, logout-all and a password change are answered, and the replica has each', async () => {
    const [v, a, m, p] = await cluster.users(['wv', 'wa', 'wm', 'wp']);
    const V = await Client.connect(cluster.gw(0), v.token);
    const f = await block(V, a.name);
    assert.equal(f.kind, 'block', brief(f));
    assert.equal(await onReplica('SISMEMBER', `parley:{u:${v.name}}:blocks`, a.name), '1', 'the block on the replica');
    assert.equal(await onReplica('SISMEMBER', `parley:{u:${a.name}}:hidden`, v.name), '1', "the blocked user's side on the replica");

    const g = await cluster.createGroup(V, 'wg', [m.name]);
    const r = await remove(V, g, v.name, m.name);
    assert.equal(r.kind, 'group', brief(r));
    assert.equal(await onReplica('SISMEMBER', `parley:{g:${g}}:members`, m.name), '0', 'removed on the replica');

    const pw = await post(cluster.gw(1), '/api/password', p.token, { old_password: PW, new_password: 'a new passphrase 1' });
    assert.equal(pw.status, 200, pw.text);
    const out = await post(cluster.gw(1), '/api/logout-all', pw.body.token);
    assert.equal(out.status, 204, out.text);
});

cluster.test(
    'replica stopped: block, group remove, logout, logout-all and a password change are refused (unavailable, 503 JSON), no frame claims them; replica back: answered',
    async () => {
        const [v, a, m, p, q] = await cluster.users(['xv', 'xa', 'xm', 'xp', 'xq']);
        const V = await Client.connect(cluster.gw(0), v.token);
        const V2 = await Client.connect(cluster.gw(1), v.token);
        const g = await cluster.createGroup(V, 'xg', [m.name]);
        await replica.stop();
        try {
            const t0 = performance.now();
            const f = await block(V, a.name);
            assert.equal(f.kind, 'error', `no block frame without a replica: ${brief(f)}`);
            assert.equal(f.code, 'unavailable', brief(f));
            console.log(`block refused after ${(performance.now() - t0).toFixed(0)} ms`);
            const r = await remove(V, g, v.name, m.name);
            assert.equal(r.kind, 'error', brief(r));
            assert.equal(r.code, 'unavailable', brief(r));
            for (const [what, res] of [
                ['logout', await post(cluster.gw(0), '/api/logout', p.token)],
                ['logout-all', await post(cluster.gw(1), '/api/logout-all', q.token)],
                ['password', await post(cluster.gw(0), '/api/password', v.token, { old_password: PW, new_password: 'a new passphrase 2' })],
            ]) {
                assert.equal(res.status, 503, `${what}: ${res.status} ${res.text}`);
                assert.ok(res.body && res.body.error, `${what}: a JSON error: ${res.text}`);
            }
            // four at once: at most heartbeat-ttl / (2 x wait-timeout) = 2 WAIT at a time, the others
            // refused at once; every one answered in the bound, the gateway still healthy
            const t1 = performance.now();
            const many = await Promise.all([a, m, p, q].map((u, i) => block([V, V2][i % 2], u.name)));
            for (const x of many) assert.equal(x.code, 'unavailable', brief(x));
            console.log(`4 blocks at once refused within ${(performance.now() - t1).toFixed(0)} ms`);
            assert.equal(await healthz(cluster.gw(0)), 200, 'the gateway healthy');
            // nothing told either session of v that the block or the removal happened
            for (const S of [V, V2]) {
                assert.deepEqual(
                    S.all((x) => x.kind === 'block'),
                    [],
                    'no block frame',
                );
                assert.deepEqual(
                    S.all((x) => x.kind === 'group' && x.op === 'remove'),
                    [],
                    'no remove frame',
                );
            }
        } finally {
            await replica.start();
        }
        // the replica back: the same requests answered (a retry, as unavailable says)
        assert.equal((await block(V, a.name)).kind, 'block');
        assert.equal((await remove(V, g, v.name, m.name)).kind, 'group');
        assert.equal((await post(cluster.gw(1), '/api/logout-all', q.token)).status, 204);
    },
);
