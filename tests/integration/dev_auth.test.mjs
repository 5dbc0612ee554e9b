// Development auth mode (protocol.md, last section): a gateway started with
// --dev-auth accepts /ws?user=NAME without a token and text frames without a
// cid, refuses to start unless it listens on loopback only, and is never the
// default. Cluster: redis, router, gw1 (normal), gw2 (--dev-auth).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before } from 'node:test';
import { Client, brief } from './lib/client.mjs';
import { Cluster, SECRET, freePort } from './lib/cluster.mjs';

const cluster = new Cluster('dev_auth', { gatewayArgs: (i) => (i === 1 ? ['--dev-auth'] : []) });
before(() => cluster.start());
after(() => cluster.stop());

cluster.test('--dev-auth: /ws?user=NAME without a token opens a session for NAME', async () => {
    const c = await Client.connect(cluster.gw(1), null, { query: { user: 'seedy' } });
    assert.equal(c.hello.user, 'seedy', `hello: ${brief(c.hello)}`);
});

cluster.test('--dev-auth: a seed-style text without cid (with from and sent) is delivered from the session user', async () => {
    const B = await Client.connect(cluster.gw(1), null, { query: { user: 'seedb' } });
    const A = await Client.connect(cluster.gw(1), null, { query: { user: 'seeda' } });
    A.send({ kind: 'text', from: 'someone-else', to: 'seedb', data: 'hi from the seed client', sent: 5 });
    const t = await B.next({ kind: 'text' });
    assert.equal(t.from, 'seeda', `from is the session user: ${brief(t)}`);
    assert.equal(t.data, 'hi from the seed client');
    assert.ok(Number.isInteger(t.id) && t.id > 0, `server id: ${brief(t)}`);
    await A.expectNone({ kind: 'error' }, 300, 'an error for a cid-less text in dev mode');
});

cluster.test('without --dev-auth, /ws?user=NAME is refused with 401', async () => {
    const err = await Client.connect(cluster.gw(0), null, { query: { user: 'seedy' } }).then(
        (c) => (c.close(), null),
        (e) => e,
    );
    assert.ok(err, 'a normal gateway must not open a session from ?user= alone');
    assert.equal(err.status, 401, `expected HTTP 401, got ${err.message}`);
});

cluster.test('--dev-auth refuses to start when listening beyond loopback', async () => {
    const port = await freePort();
    const r = spawnSync(
        cluster.bin('parley-gateway'),
        ['--dev-auth', '--listen', '0.0.0.0', '--port', String(port), '--redis-url', cluster.redisUrl, '--secret', SECRET, '--id', 'gw-bad'],
        { timeout: 5000, encoding: 'utf8' },
    );
    assert.equal(r.signal, null, `the gateway kept running with --dev-auth on 0.0.0.0 (killed after 5 s): ${r.stderr}`);
    assert.notEqual(r.status, 0, `exit status with --dev-auth on 0.0.0.0: ${r.status}; stderr: ${r.stderr}`);
    assert.ok(r.stderr.trim().length > 0, 'it says why on stderr');
});

cluster.test('a bad flag or value makes each program print one line and exit 2', async () => {
    const runs = [
        ['parley-gateway', ['--no-such-flag']],
        ['parley-gateway', ['--port', 'eighty']],
        ['parley-router', ['--lease-ms', 'abc']],
        ['parley-router', ['--no-such-flag']],
        ['parley', ['--no-such-flag', 'online']],
    ];
    const bad = [];
    for (const [prog, args] of runs) {
        let bin;
        try {
            bin = cluster.bin(prog);
        } catch (e) {
            bad.push(e.message);
            continue;
        }
        const r = spawnSync(bin, args, { timeout: 5000, encoding: 'utf8', env: { ...process.env, PARLEY_REDIS_URL: cluster.redisUrl } });
        const lines = r.stderr.trim().split('\n').filter(Boolean);
        if (r.status !== 2 || lines.length !== 1)
            bad.push(`${prog} ${args.join(' ')}: exit ${r.status} signal ${r.signal}, stderr ${lines.length} line(s): ${r.stderr.trim().slice(0, 300)}`);
    }
    assert.deepEqual(bad, [], 'every bad flag: one line on stderr and exit status 2');
});
