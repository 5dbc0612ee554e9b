// Redis Cluster groundwork (issue 15): a local 3-master cluster of real
// redis-server processes, and Parley's view of it (common/cluster.c through
// `parley slots` and `parley keyslot`): the slot map read from CLUSTER SLOTS
// matches what every node says, every Parley key shape hashes to the slot
// CLUSTER KEYSLOT names, the master Parley picks for it takes a write without
// a redirection and the others answer MOVED to it, and the map follows a
// slot moved between masters.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { BUILD_DIR } from './lib/cluster.mjs';
import { RedisCluster } from './lib/rcluster.mjs';
import { Conn } from './lib/resp.mjs';

const rc = new RedisCluster('redis_cluster', { masters: 3 });
before(() => rc.start());
after(() => rc.stop());

function parley(port, args) {
    return new Promise((resolve) =>
        execFile(path.join(BUILD_DIR, 'parley'), ['--redis-url', `redis://127.0.0.1:${port}`, ...args], { timeout: 10000 }, (err, stdout, stderr) =>
            resolve({ code: err ? err.code : 0, stdout, stderr }),
        ),
    );
}

// the MOVED/ASK part of a refused command's error
const redirection = (e) => (/(MOVED|ASK) .*/.exec(e.message) || [e.message])[0];

// `parley slots` output as [[start, end, port]], sorted
function parseSlots(out) {
    const ranges = [];
    for (const line of out.split('\n')) {
        const m = /^127\.0\.0\.1:(\d+) id=\S+ \[([^\]]*)\] slots=\d+$/.exec(line);
        if (!m) continue;
        for (const r of m[2].split(',').filter(Boolean)) {
            const [a, b = a] = r.split('-').map(Number);
            ranges.push([a, b, Number(m[1])]);
        }
    }
    return ranges.sort((x, y) => x[0] - y[0]);
}

// the Parley key shapes (common/keys.h), for a user, a conversation and a group
const KEYS = [
    'parley:{u:alice}:inbox',
    'parley:{u:alice}:meta',
    'parley:{u:bob.x-y_z}:mentions',
    'parley:{c:alice|bob}:history',
    'parley:{c:#dev}:history',
    'parley:{g:#dev}:members',
    'parley:{g:#dev}:job:17',
    'parley:users',
    'parley:ids',
    'parley:slot:63',
    'parley:gw:gw1:alive',
    'parley:{u:}:odd', // an empty-looking tag is not empty here: "u:"
    'x{}{y}',
    'plain',
];

test('parley slots reads the map every node reports; every key shape hashes as CLUSTER KEYSLOT says and lives where the map says', async () => {
    for (const node of rc.nodes) {
        const out = await parley(node.port, ['slots']);
        assert.equal(out.code, 0, out.stderr);
        assert.deepEqual(parseSlots(out.stdout), await rc.slots(node.port), `parley slots via :${node.port}`);
        assert.match(out.stdout, /covered=16384 of 16384/);
    }
    const port = rc.nodes[0].port;
    const out = await parley(port, ['keyslot', ...KEYS]);
    assert.equal(out.code, 0, out.stderr);
    const lines = out.stdout.trim().split('\n');
    assert.equal(lines.length, KEYS.length);
    for (const [i, key] of KEYS.entries()) {
        const want = Number(await rc.command(port, 'CLUSTER', 'KEYSLOT', key));
        const m = /^(\S+) slot=(\d+) node=127\.0\.0\.1:(\d+)$/.exec(lines[i]);
        assert.ok(m && m[1] === key, lines[i]);
        assert.equal(Number(m[2]), want, `${key}: parley ${m[2]}, CLUSTER KEYSLOT ${want}`);
        const owner = Number(m[3]);
        assert.equal(await rc.command(owner, 'SET', key, 'v'), 'OK', `${key} written on its master :${owner}`);
        for (const other of rc.nodes.filter((x) => x.port !== owner)) {
            const r = await rc.command(other.port, 'GET', key).catch(redirection);
            assert.equal(r, `MOVED ${want} 127.0.0.1:${owner}`, `${key} on :${other.port}`);
        }
    }
});

test('a slot moved to another master (CLUSTER SETSLOT, MIGRATE): the map read afterwards follows it', async () => {
    const port = rc.nodes[0].port;
    const key = 'parley:{u:moving}:inbox';
    const slot = Number(await rc.command(port, 'CLUSTER', 'KEYSLOT', key));
    const from = Number(/node=127\.0\.0\.1:(\d+)/.exec((await parley(port, ['keyslot', key])).stdout)[1]);
    const to = rc.nodes.find((x) => x.port !== from).port;
    await rc.command(from, 'RPUSH', key, 'a', 'b');
    const id = async (p) => (await rc.command(p, 'CLUSTER', 'MYID')).trim();
    const [fromId, toId] = [await id(from), await id(to)];
    // the specification's steps: IMPORTING on the target, MIGRATING on the source, move the keys, NODE on all
    assert.equal(await rc.command(to, 'CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', fromId), 'OK');
    assert.equal(await rc.command(from, 'CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', toId), 'OK');
    // while migrating: a key not moved yet is still served by the source; a missing one is an ASK
    const ask = await rc.command(from, 'GET', 'parley:{u:moving}:absent').catch(redirection);
    assert.equal(ask, `ASK ${slot} 127.0.0.1:${to}`, 'a key not on the source during the move');
    const keys = await rc.command(from, 'CLUSTER', 'GETKEYSINSLOT', String(slot), '100');
    for (const k of keys) assert.equal(await rc.command(from, 'MIGRATE', '127.0.0.1', String(to), k, '0', '5000'), 'OK');
    for (const node of rc.nodes) await rc.command(node.port, 'CLUSTER', 'SETSLOT', String(slot), 'NODE', toId);
    await rc.waitOk();
    const after = await parley(port, ['keyslot', key]);
    assert.match(after.stdout, new RegExp(`slot=${slot} node=127\\.0\\.0\\.1:${to}\\n`), after.stdout);
    assert.deepEqual(await rc.command(to, 'LRANGE', key, '0', '-1'), ['a', 'b'], 'the key moved with its slot');
    const moved = await rc.command(from, 'LLEN', key).catch(redirection);
    assert.equal(moved, `MOVED ${slot} 127.0.0.1:${to}`);
});

test('a redis-cluster:// URL of seeds: the CLI reads the map from the first seed that answers', async () => {
    const live = rc.nodes[1].port;
    const url = `redis-cluster://127.0.0.1:1,127.0.0.1:${live}`;
    const out = await new Promise((resolve) =>
        execFile(path.join(BUILD_DIR, 'parley'), ['--redis-url', url, 'slots'], { timeout: 10000 }, (err, stdout, stderr) =>
            resolve({ code: err ? err.code : 0, stdout, stderr }),
        ),
    );
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(parseSlots(out.stdout), await rc.slots(live), 'the map, through the second seed');
});

test('not a cluster, or a bad flag: one line and a non-zero exit', async () => {
    const out = await parley(1, ['slots']);
    assert.ok(out.code === 1 && out.stderr.trim().split('\n').length === 1, JSON.stringify(out));
    const local = await new Promise((resolve) =>
        execFile(path.join(BUILD_DIR, 'parley'), ['keyslot', '--local', 'foo'], (err, stdout) => resolve({ code: err ? err.code : 0, stdout })),
    );
    assert.deepEqual(local, { code: 0, stdout: 'foo slot=12182\n' });
});

// issue 15's chaos needs a cluster whose masters have replicas, and a failover: the harness makes
// one, and WAIT says how many replicas took a write before its master died
test('with a replica per master: WAIT counts the replica, SIGKILL of a master promotes it, a write WAITed for survives', async () => {
    const rr = new RedisCluster('redis_cluster_failover', { masters: 3, replicas: 1 });
    await rr.start();
    try {
        const key = 'parley:{u:failover}:inbox';
        const slot = Number(await rr.command(rr.nodes[0].port, 'CLUSTER', 'KEYSLOT', key));
        const master = await rr.masterOf(slot);
        // WAIT counts the replicas that have this connection's writes: one connection for both
        // (a fresh one has written nothing, and its WAIT answers at once)
        const conn = await Conn.open(master.port);
        try {
            assert.equal(await conn.call('RPUSH', key, 'kept'), 1);
            assert.equal(await conn.call('WAIT', '1', '2000'), 1, 'one replica has the write');
        } finally {
            conn.close();
        }
        const { killed, promoted } = await rr.failSlotMaster(slot);
        assert.notEqual(promoted.port, killed.port);
        assert.deepEqual(await rr.command(promoted.port, 'LRANGE', key, '0', '-1'), ['kept'], 'the WAITed write is on the new master');
        const out = await parley(promoted.port, ['keyslot', key]);
        assert.match(out.stdout, new RegExp(`slot=${slot} node=127\\.0\\.0\\.1:${promoted.port}\\n`), 'the map names the new master');
    } finally {
        await rr.stop();
    }
});
