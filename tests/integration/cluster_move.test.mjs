// Moving a store from one Redis to a Redis Cluster (docs/deploy.md "Moving a store from one Redis
// to a cluster"), with the documented commands and real processes: a one-Redis stack gets users,
// 1:1 and group histories and offline inbox entries; its gateways, then (once parley:fanouts is
// empty) its router are stopped; `redis-cli --cluster import --cluster-copy` copies every key into
// a local 3-master cluster (lib/rcluster.mjs) and `parley cluster-ids --from` raises every cluster
// slot's id counter above the old parley:ids; then a router and two gateways on the cluster URL:
// old tokens and password logins work, history and offline messages are there, and new messages
// get ids above every old one of their conversation and are delivered.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { Client, brief, login, sendReliably } from './lib/client.mjs';
import { Cluster, ONE_NODE_CLUSTER, SECRET, waitFor } from './lib/cluster.mjs';

// the old store is one plain redis-server whose router runs send.lua (ids from parley:ids): not a
// test to run with every Redis a cluster node, nor with every router in steps
const skip =
    (ONE_NODE_CLUSTER && 'the old store must be one Redis without cluster mode') ||
    (process.env.PARLEY_SEND_STEPS === '1' && 'the old store is one whose router ran send.lua (ids from parley:ids)');
// --fanout-chunk 1: every group text is a queued fan-out job (send.lua, fanout.lua), the kind a
// cluster's routers cannot run: the move drains them first
const one = new Cluster('cluster_move-one', { redis: 'one', routerArgs: ['--fanout-chunk', '1'] });
const cl = new Cluster('cluster_move-cluster', { redis: 'cluster3' });
const PASSWORD = 'correct horse battery';

// what the old store held, for the checks on the cluster
const old = { users: null, group: null, acks: {}, top: 0, burst: [], C: null };
let cidN = 0;
const cid = (p) => `${p}-${++cidN}`;

before(async () => {
    if (skip) return;
    await one.start();
});
after(async () => {
    if (skip) return;
    await one.stop();
    await cl.stop();
});

// Runs the parley CLI with args (no --redis-url of its own: the caller gives it).
function parley(args, timeout = 20000) {
    return new Promise((resolve) => {
        execFile(one.bin('parley'), ['--secret', SECRET, ...args], { timeout }, (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
    });
}

// Sends a text (retried on unavailable) and returns its ack.
const send = (client, to, data, p = 'm') => sendReliably(client, { kind: 'text', to, data, cid: cid(p) });

// A key's type and value, comparable across servers (a set's order is the server's own).
async function content(redis, key) {
    const type = String(await redis('TYPE', key));
    const sorted = (a) => a.map((x) => Buffer.from(x).toString('base64')).sort();
    if (type === 'string') return [type, await redis('GET', key)];
    if (type === 'list') return [type, await redis('LRANGE', key, '0', '-1')];
    if (type === 'set') return [type, sorted(await redis('SMEMBERS', key))];
    if (type === 'hash') {
        const flat = (await redis('HGETALL', key)).map((x) => Buffer.from(x).toString('base64'));
        return [
            type,
            flat
                .filter((_, i) => i % 2 === 0)
                .map((f, i) => `${f}=${flat[2 * i + 1]}`)
                .sort(),
        ];
    }
    if (type === 'zset') return [type, await redis('ZRANGE', key, '0', '-1', 'WITHSCORES')];
    return [type];
}

// A conversation's history (the newest 100) as client sees it.
async function history(client, withName) {
    client.send({ kind: 'history', with: withName, limit: 100 });
    const h = await client.next({ kind: 'history', with: withName }, 10000);
    return h.messages;
}

one.test('on one Redis: users, 1:1 and group histories, offline inbox entries', { skip }, async () => {
    const [a, b, c, d] = await one.users(['ma', 'mb', 'mc', 'md']);
    old.users = { a, b, c, d };
    // a store with a past: a million ids handed out before (so the ids here need counters of 61
    // on the cluster: 1,000,000 / 16384)
    await one.redis('SET', 'parley:ids', '1000000');
    const A = await Client.connect(one.gw(0), a.token);
    const C = await Client.connect(one.gw(1), c.token);
    // b offline: three texts from a wait in b's inbox
    old.acks.ab = [];
    for (let i = 0; i < 3; i++) old.acks.ab.push(await send(A, b.name, `a->b before ${i}`));
    // a and c online: a 1:1 each way
    old.acks.ac = [await send(A, c.name, 'a->c before'), await send(C, a.name, 'c->a before')];
    await A.next({ kind: 'text', id: old.acks.ac[1].id });
    // a group of a, b, c: two texts (b's copies offline)
    old.group = await one.createGroup(A, 'mg', [b.name, c.name]);
    old.acks.g = [await send(A, old.group, 'a->group before'), await send(C, old.group, 'c->group before')];
    await C.next({ kind: 'text', id: old.acks.g[0].id });
    await A.next({ kind: 'text', id: old.acks.g[1].id });
    old.C = C; // what it received stays readable after the test closes it
    old.top = Number(await one.redis('GET', 'parley:ids'));
    const all = [...old.acks.ab, ...old.acks.ac, ...old.acks.g].map((x) => x.id);
    assert.equal(old.top, Math.max(...all), 'parley:ids is the newest id handed out');
    assert.equal(await one.redis('LLEN', `parley:{u:${b.name}}:inbox`), 5, "b's offline entries");
    // the last group texts are still in flight when the move starts (no ack awaited): their
    // fan-outs queued, their sender retries them on the cluster
    for (let i = 0; i < 4; i++) {
        const f = { kind: 'text', to: old.group, data: `burst ${i}`, cid: cid('burst') };
        old.burst.push(f);
        A.send(f);
    }
});

one.test(
    'the move: gateways stopped, fan-outs drained, router stopped; redis-cli --cluster import; parley cluster-ids',
    { skip, timeout: 120000 },
    async () => {
        // 1. no new work: the gateways first (clients get 1001 and reconnect later), then the
        // queued fan-outs drained by the router still running, then the router
        for (const g of one.gateways) assert.equal((await g.proc.stop()).code, 0, `${g.id} exit`);
        await waitFor(async () => Number(await one.redis('SCARD', 'parley:fanouts')) === 0, { what: 'parley:fanouts empty' });
        let keys = 0;

        // 2. the cluster, the import, the counters: started through the cluster's own start(), so
        // that its router and gateways come up only after them
        const startRedis = cl.startRedis.bind(cl);
        cl.startRedis = async () => {
            await startRedis();
            const seed = `127.0.0.1:${cl.rc.nodes[0].port}`;
            const from = `127.0.0.1:${one.redisPort}`;
            // refused while the old store has a live router (what it stores after the import
            // would not be on the cluster)
            const live = await parley(['--redis-url', cl.redisUrl, 'cluster-ids', '--from', `redis://${from}`]);
            assert.equal(live.code, 1, `cluster-ids with a live router: ${live.stdout} ${live.stderr}`);
            assert.match(live.stderr, /has a live router: router-1 beat \d+ ms ago/);
            for (const r of one.routers) await r.proc.stop();
            keys = Number(await one.redis('DBSIZE'));
            old.top = Number(await one.redis('GET', 'parley:ids')); // the burst's ids too, if stored
            const imp = await cl.rc.cli(['--cluster', 'import', seed, '--cluster-from', from, '--cluster-copy'], 60000);
            assert.equal(imp.code, 0, `redis-cli --cluster import: ${imp.stdout.slice(-2000)} ${imp.stderr}`);
            assert.match(imp.stdout, /Importing \d+ keys from DB 0/);
            // every key of the old store that does not expire is on the cluster, as it was (the
            // expiring ones, slot leases and heartbeats, may expire while it runs)
            const kept = [];
            for (const k of await one.redis('KEYS', '*')) if (Number(await one.redis('PTTL', k)) === -1) kept.push(k);
            assert.ok(kept.length >= keys - 20, `${kept.length} keys without a TTL of ${keys}`);
            for (const k of kept) {
                assert.deepEqual(
                    await content((...a) => cl.redisBuffers(...a), k),
                    await content((...a) => one.redisBuffers(...a), k),
                    `${k} on the cluster as in the old store`,
                );
            }

            // refused while queued fan-outs came along (a cluster's routers cannot run them)
            await cl.redis('SADD', 'parley:fanouts', '#queued');
            const refused = await parley(['--redis-url', cl.redisUrl, 'cluster-ids', '--from', `redis://${from}`]);
            assert.equal(refused.code, 1, `cluster-ids with parley:fanouts: ${refused.stdout} ${refused.stderr}`);
            assert.match(refused.stderr, /queued fan-outs/);
            await cl.redis('DEL', 'parley:fanouts');
            // not the cluster: a usage error of its own
            const notCluster = await parley(['--redis-url', `redis://${from}`, 'cluster-ids', '--top', '5']);
            assert.equal(notCluster.code, 1, notCluster.stderr);
            assert.match(notCluster.stderr, /must name the Redis Cluster/);

            const need = Math.floor(old.top / 16384);
            const dry = await parley(['--redis-url', cl.redisUrl, 'cluster-ids', '--from', `redis://${from}`, '--dry-run']);
            assert.equal(dry.code, 0, dry.stderr);
            assert.match(dry.stdout, new RegExp(`^top=${old.top} .* counters>=${need}: slots=16384 raised=16384 kept=0 \\(dry run`), dry.stdout);
            const run = await parley(['--redis-url', cl.redisUrl, 'cluster-ids', '--from', `redis://${from}`]);
            assert.equal(run.code, 0, run.stderr);
            assert.match(
                run.stdout,
                new RegExp(`^top=${old.top} \\(from=${old.top} copy=${old.top} given=0\\) counters>=${need}: slots=16384 raised=16384 kept=0\n`),
                run.stdout,
            );
            // again: nothing to raise (idempotent); a lower top lowers nothing
            const again = await parley(['--redis-url', cl.redisUrl, 'cluster-ids', '--top', '1']);
            assert.equal(again.code, 0, again.stderr);
            assert.match(again.stdout, /slots=16384 raised=0 kept=16384/, again.stdout);
            // the counters themselves, on the masters of a few slots (GETKEYSINSLOT finds the
            // slot's parley:{TAG}:ids)
            for (const slot of [0, 1, 5460, 5461, 12345, 16383]) {
                const master = await cl.rc.masterOf(slot);
                const keysIn = await cl.rc.command(master.port, 'CLUSTER', 'GETKEYSINSLOT', String(slot), '100');
                const counter = keysIn.find((k) => /^parley:\{[0-9a-z]{1,4}\}:ids$/.test(k));
                assert.ok(counter, `slot ${slot} has its id counter: ${keysIn}`);
                assert.equal(Number(await cl.rc.command(master.port, 'GET', counter)), need, counter);
            }
        };
        await cl.start();
    },
);

cl.test('on the cluster: old tokens and password logins work; offline messages and histories are there', { skip }, async () => {
    const { a, b, c } = old.users;
    // the old token (its signed-in session moved with the user's keys) and a fresh login
    const B = await Client.connect(cl.gw(1), b.token);
    const offline = [...old.acks.ab, ...old.acks.g].map((x) => x.id).sort((x, y) => x - y);
    for (const id of offline) await B.next({ kind: 'text', id }, 10000);
    const got = B.all({ kind: 'text' }).map((t) => t.id);
    assert.deepEqual(
        got.filter((id) => offline.includes(id)),
        offline,
        'the offline entries in order',
    );
    assert.deepEqual(
        got,
        [...got].sort((x, y) => x - y),
        'and the burst texts after them, in id order',
    );
    const r = await login(cl.gw(0), a.name, PASSWORD);
    assert.equal(r.status, 200, `login: ${r.status} ${r.text}`);
    const A = await Client.connect(cl.gw(0), r.body.token);
    assert.deepEqual(
        (await history(A, b.name)).map((m) => [m.id, m.data]),
        old.acks.ab.map((x, i) => [x.id, `a->b before ${i}`]),
        'the 1:1 history a|b',
    );
    assert.deepEqual(
        (await history(A, c.name)).map((m) => m.id),
        old.acks.ac.map((x) => x.id),
        'the 1:1 history a|c',
    );
    assert.deepEqual(
        (await history(B, old.group)).map((m) => m.id).slice(0, 2),
        old.acks.g.map((x) => x.id),
        'the group history (then the burst)',
    );
});

cl.test('on the cluster: new messages get ids above every old one of their conversation and are delivered', { skip }, async () => {
    const { a, b, c } = old.users;
    const A = await Client.connect(cl.gw(0), a.token);
    const B = await Client.connect(cl.gw(1), b.token);
    const C = await Client.connect(cl.gw(1), c.token);
    const oldMax = (acks) => Math.max(...acks.map((x) => x.id));
    const checks = [
        [A, b.name, B, old.acks.ab],
        [B, a.name, A, old.acks.ab],
        [C, a.name, A, old.acks.ac],
        [A, old.group, C, old.acks.g],
        [B, old.group, A, old.acks.g],
    ];
    for (const [from, to, recv, acks] of checks) {
        const ack = await send(from, to, `${from.name}->${to} after`, 'new');
        assert.ok(ack.id > old.top, `new id ${ack.id} above the old store's top ${old.top}`);
        assert.ok(ack.id > oldMax(acks), `new id ${ack.id} above the conversation's old ones`);
        const t = await recv.next({ kind: 'text', id: ack.id }, 10000);
        assert.equal(t.data, `${from.name}->${to} after`, brief(t));
    }
    // the texts in flight at the move, retried with their cids: each stored once, acked with
    // the id it got (on the old store, or here when it never got there), delivered once
    const acks = [];
    for (const f of old.burst) acks.push(await sendReliably(A, f));
    const g = await history(A, old.group);
    for (const [i, f] of old.burst.entries()) {
        const stored = g.filter((m) => m.data === f.data);
        assert.equal(stored.length, 1, `${f.data} stored once: ${brief(stored)}`);
        assert.equal(stored[0].id, acks[i].id, `${f.data} acked with its id`);
    }
    // c's copies: what it saw before the move, then (as a client does after a reconnect) a sync
    // from the last seq it saw, in the epoch it knew: each burst text once in c's inbox (one seq)
    const lastSeq = Math.max(...old.C.all({ kind: 'text' }).map((t) => t.seq));
    C.send({ kind: 'sync', after: lastSeq, epoch: old.C.hello.epoch });
    const end = await C.next({ kind: 'sync' }, 10000);
    assert.equal(end.recovered, true, `sync across the move: ${brief(end)}`);
    const seen = [...old.C.all({ kind: 'text' }), ...C.all({ kind: 'text' })];
    for (const a of acks) {
        const seqs = new Set(seen.filter((t) => t.id === a.id).map((t) => t.seq));
        assert.equal(seqs.size, 1, `burst id ${a.id} in c's inbox once: seqs ${[...seqs]}`);
    }
    // and the histories read in id order, old first
    const h = await history(A, b.name);
    const ids = h.map((m) => m.id);
    assert.deepEqual(
        ids,
        [...ids].sort((x, y) => x - y),
        'history in id order',
    );
    assert.equal(h.length, 5, 'three old texts and two new ones');
    // a user who only existed in the old store logs in with his password
    const r = await login(cl.gw(1), old.users.d.name, PASSWORD);
    assert.equal(r.status, 200, `login: ${r.status} ${r.text}`);
});

// ------------------------------------------------------------------ backups (docs/deploy.md "Backups")

cl.test(
    "a backup of every node (BGREWRITEAOF, appendonlydir/ and nodes.conf) restored, then parley after-restore: the backup's state, new ids above the lost ones, clients told to reload",
    { skip, timeout: 120000 },
    async () => {
        const { a, b } = old.users;
        const bk = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-backup-'));
        // the backup: a rewrite on every node, waited for, then each node's files
        for (const n of cl.rc.nodes) assert.match(await cl.rc.command(n.port, 'BGREWRITEAOF'), /rewriting/);
        await waitFor(
            async () => {
                for (const n of cl.rc.nodes) {
                    const p = await cl.rc.command(n.port, 'INFO', 'persistence');
                    if (!/aof_rewrite_in_progress:0/.test(p) || !/aof_rewrite_scheduled:0/.test(p)) return false;
                }
                return true;
            },
            { what: 'every AOF rewrite finished' },
        );
        for (const [i, n] of cl.rc.nodes.entries()) {
            fs.cpSync(path.join(n.dir, 'appendonlydir'), path.join(bk, `n${i}`, 'appendonlydir'), { recursive: true });
            fs.copyFileSync(path.join(n.dir, 'nodes.conf'), path.join(bk, `n${i}`, 'nodes.conf'));
        }
        const A = await Client.connect(cl.gw(0), a.token);
        const B = await Client.connect(cl.gw(1), b.token);
        const kept = (await history(B, a.name)).map((m) => m.id);
        // after the backup: three texts that the restore loses
        const lost = [];
        for (let i = 0; i < 3; i++) {
            lost.push(await send(A, b.name, `lost ${i}`));
            await B.next({ kind: 'text', id: lost.at(-1).id });
        }
        const lastSeq = B.all({ kind: 'text' }).at(-1).seq;
        const epoch = B.hello.epoch;
        await Client.closeAll();

        // the restore: everything stopped, each node's files back, the nodes started
        for (const g of cl.gateways) await g.proc.stop();
        for (const r of cl.routers) await r.proc.stop();
        for (const n of cl.rc.nodes) await n.proc.stop();
        for (const [i, n] of cl.rc.nodes.entries()) {
            fs.rmSync(path.join(n.dir, 'appendonlydir'), { recursive: true, force: true });
            fs.cpSync(path.join(bk, `n${i}`, 'appendonlydir'), path.join(n.dir, 'appendonlydir'), { recursive: true });
            fs.copyFileSync(path.join(bk, `n${i}`, 'nodes.conf'), path.join(n.dir, 'nodes.conf'));
        }
        fs.rmSync(bk, { recursive: true, force: true });
        for (const n of cl.rc.nodes) cl.rc.startNode(n);
        await cl.rc.waitOk(30000);

        const dry = await parley(['--redis-url', cl.redisUrl, 'after-restore', '--dry-run']);
        assert.equal(dry.code, 0, dry.stderr);
        assert.match(dry.stdout, /^cluster: every slot's id counter \+1000000000 \(16384 counters\); inbox epochs reset: users=\d+ \(dry run/, dry.stdout);
        const run = await parley(['--redis-url', cl.redisUrl, 'after-restore']);
        assert.equal(run.code, 0, run.stderr);
        assert.match(run.stdout, /^cluster: every slot's id counter \+1000000000 \(16384 counters\); inbox epochs reset: users=\d+\n/, run.stdout);
        assert.equal(await cl.redis('HGET', `parley:{u:${b.name}}:meta`, 'epoch'), null, "b's epoch deleted");

        for (const r of cl.routers) r.proc.start(cl.bin('parley-router'), r.args);
        await cl.waitRouted(cl.routers[0].proc);
        for (const g of cl.gateways) await cl.startGateway({ index: g.index });
        const B2 = await Client.connect(cl.gw(1), b.token, { name: 'b-after-restore' });
        assert.notEqual(B2.hello.epoch, epoch, 'a new inbox epoch');
        assert.deepEqual(
            (await history(B2, a.name)).map((m) => m.id),
            kept,
            'the history as at the backup (the lost texts are not in it)',
        );
        // new texts: ids above the lost ones (not the same ids again), delivered; they take b's
        // inbox seqs past the ones the restore lost
        const A2 = await Client.connect(cl.gw(0), a.token, { name: 'a-after-restore' });
        for (let i = 0; i <= lost.length; i++) {
            const ack = await send(A2, b.name, `after the restore ${i}`);
            assert.ok(
                lost.every((x) => ack.id > x.id),
                `new id ${ack.id} above the lost ones ${lost.map((x) => x.id)}`,
            );
            await B2.next({ kind: 'text', id: ack.id }, 10000);
        }
        // a device of b that saw the lost entries syncs from its last seq in the epoch it knew:
        // told to reload (the same epoch would answer recovered with the entries above that seq
        // only, silently skipping the new ones below it)
        const B3 = await Client.connect(cl.gw(0), b.token, { name: 'b-old-device' });
        B3.send({ kind: 'sync', after: lastSeq, epoch });
        const end = await B3.next({ kind: 'sync' }, 10000);
        assert.equal(end.recovered, false, `sync after the restore: ${brief(end)}`);
        assert.ok(end.seq > lastSeq, `b's seq ${end.seq} is past the lost ones' (${lastSeq}) again`);
    },
);

one.test('parley after-restore on one Redis: parley:ids up by --ids, every inbox epoch deleted', { skip }, async () => {
    const before = Number(await one.redis('GET', 'parley:ids'));
    const run = await parley(['--redis-url', `redis://127.0.0.1:${one.redisPort}`, 'after-restore', '--ids', '1000']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
        run.stdout,
        new RegExp(`^one Redis: parley:ids now ${before + 1000}, per-slot counters \\+1000 \\(0 of them\\); inbox epochs reset: users=4\\n`),
        run.stdout,
    );
    assert.equal(Number(await one.redis('GET', 'parley:ids')), before + 1000);
    for (const u of Object.values(old.users)) assert.equal(await one.redis('HGET', `parley:{u:${u.name}}:meta`, 'epoch'), null, `${u.name}'s epoch`);
});
