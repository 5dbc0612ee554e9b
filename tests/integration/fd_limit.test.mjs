// A gateway at its file-descriptor limit (issue 12: "on EMFILE/ENFILE stop
// accepting for a while and log once per interval, recover by itself"). The
// listener rests 100 ms after an accept() that found no descriptor
// (deploy/lws-patches/0002-listen-rest-on-emfile.patch) instead of spinning
// on the still-readable listen socket: the gateway keeps serving the sockets
// it has, logs at most one line a second, and accepts again once descriptors
// are free. Cluster: redis, router, one gateway under `prlimit --nofile`.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { after, before } from 'node:test';
import { Client, healthz } from './lib/client.mjs';
import { Cluster, makeUsers, sleep, waitFor } from './lib/cluster.mjs';

const NOFILE = 96; // the gateway needs ~30 at rest (lws, Redis links, pipes)
const cluster = new Cluster('fd_limit', { gateways: 1, gatewayWrap: ['prlimit', `--nofile=${NOFILE}:${NOFILE}`] });
before(() => cluster.start());
after(() => cluster.stop());

// CPU seconds the process has used (utime + stime of /proc/PID/stat)
function cpuSeconds(pid) {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // clock ticks (USER_HZ = 100 on Linux)
}

function openSockets(port, n) {
    return Promise.all(
        Array.from(
            { length: n },
            () =>
                new Promise((resolve) => {
                    const s = net.connect(port, '127.0.0.1', () => resolve(s));
                    s.on('error', () => resolve(s)); // counted below by whether it is still open
                }),
        ),
    );
}

cluster.test('at its descriptor limit the gateway rests instead of spinning, serves its sockets, and recovers', async () => {
    const port = cluster.gw(0);
    const tokens = await makeUsers(port, ['early', 'late']);
    const early = await Client.connect(port, tokens.early, { name: 'early' });
    const pid = cluster.gateways[0].proc.pid;
    const logBefore = cluster.gateways[0].proc.log.length;

    // more connections than descriptors: the kernel queues them, accept() fails with EMFILE
    const socks = await openSockets(port, NOFILE + 60);
    await waitFor(() => /errno 24/.test(cluster.gateways[0].proc.log.slice(logBefore)), {
        timeout: 5000,
        what: 'the gateway to meet EMFILE',
    });
    const c0 = cpuSeconds(pid);
    const t0 = Date.now();
    await sleep(3000); // what the loop does while the queue stays full
    const cpu = (cpuSeconds(pid) - c0) / ((Date.now() - t0) / 1000);
    const lines = cluster.gateways[0].proc.log
        .slice(logBefore)
        .split('\n')
        .filter((l) => /accept: errno/.test(l)).length;
    assert.ok(lines <= 8, `${lines} accept error lines in ~4 s: at most one a second expected`);
    assert.ok(cpu < 0.5, `the gateway used ${(cpu * 100).toFixed(0)}% of a core while at its limit (a spinning loop uses ~100%)`);

    // the sockets it has are still served meanwhile
    early.send({ kind: 'text', to: 'early', data: 'to myself at the limit', cid: 'lim-1' });
    const ack = await early.next({ kind: 'ack', cid: 'lim-1' }, 5000);
    assert.ok(ack.id > 0, 'a session open before the limit is acked while the gateway is full');

    // descriptors free again: it accepts by itself
    for (const s of socks) s.destroy();
    await waitFor(async () => (await healthz(port)) === 200, { timeout: 5000, what: '/healthz 200 after the sockets closed' });
    const late = await Client.connect(port, tokens.late, { name: 'late' });
    late.send({ kind: 'text', to: 'early', data: 'after the limit', cid: 'lim-2' });
    const got = await early.next({ kind: 'text', from: 'late' }, 5000);
    assert.equal(got.data, 'after the limit', 'a new session works once descriptors are free');
    await late.close();
    await early.close();
});
