// Per-user throttles in the scripts (issue 12, "no user able to stall
// another"; docs/protocol.md "Per-user throttles"): typing notices per
// conversation, changes of big groups, and read receipts in big groups
// (to the reader's own sessions only).
// Structural, never timing: what a member got is counted up to a barrier (a
// 1:1 text sent after the burst on the same sockets reaches the member after
// anything the burst published), and each bound allows one more notice per
// window the test actually took.
// Cluster: redis, router, gw1, gw2 (its own: 80 bulk users).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, brief, mintToken } from './lib/client.mjs';
import { Cluster, SECRET } from './lib/cluster.mjs';

const USERS = 80;
const BIG = 70; // >= BROADCAST_MIN (64)
const cluster = new Cluster('throttles');
let names;
before(async () => {
    await cluster.start();
    const prefix = `th${Date.now() % 100000}x`;
    const r = await cluster.cli(['bulk-users', String(USERS), '--prefix', prefix, '--password', 'bulk password 1'], 60000);
    assert.ok(r.ok, `bulk-users: ${r.stderr}`);
    names = Array.from({ length: USERS }, (_, i) => `${prefix}${i}`);
});
after(() => cluster.stop());

const token = (name) => mintToken(SECRET, name, Math.floor(Date.now() / 1000) + 3600);
const connect = (i, name) => Client.connect(cluster.gw(i % 2), token(name), { name });

// `by` creates group g (open) with members; resolves once its group frame is back
async function create(by, g, members) {
    const C = await connect(0, by);
    C.send({ kind: 'group', op: 'create', name: g, members, open: true });
    const f = await C.next((x) => (x.kind === 'group' && x.name === g) || x.kind === 'error', 15000);
    assert.equal(f.kind, 'group', brief(f));
    assert.equal(f.members.length, members.length + 1);
    await C.close();
}

// `from` sends a 1:1 text to each of the clients `to` (by name); resolves once each got it
async function barrier(from, fromName, cid, to) {
    from.send({ kind: 'text', to: to.name, data: 'barrier', cid });
    const ack = await from.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === cid, 15000);
    assert.equal(ack.kind, 'ack', `${fromName} barrier: ${brief(ack)}`);
    await to.next({ kind: 'text', id: ack.id }, 15000);
}

cluster.test('typing: 50 notices in a burst from 3 sessions: a big group gets one per 5 s window, a 1:1 peer one per second', async () => {
    const g = `#${cluster.name('typing')}`;
    const typer = names[0];
    await create(
        names[1],
        g,
        names.slice(0, BIG).filter((n) => n !== names[1]),
    );
    const peer = await connect(1, names[75]); // not a member: the 1:1 peer
    const member = await connect(1, names[2]);
    const sessions = [await connect(0, typer), await connect(1, typer), await connect(0, typer)];
    const t0 = performance.now();
    for (let i = 0; i < 50; i++) {
        const s = sessions[i % 3];
        s.send({ kind: 'typing', to: g });
        s.send({ kind: 'typing', to: peer.name });
    }
    for (const [k, s] of sessions.entries()) {
        await barrier(s, typer, `tb-m${k}`, member);
        await barrier(s, typer, `tb-p${k}`, peer);
    }
    const ms = performance.now() - t0;
    const inGroup = member.all((x) => x.kind === 'typing' && x.to === g && x.from === typer).length;
    const toPeer = peer.all((x) => x.kind === 'typing' && x.from === typer).length;
    assert.ok(inGroup >= 1 && inGroup <= 1 + Math.floor(ms / 5000), `group member got ${inGroup} typing notices in ${ms.toFixed(0)} ms`);
    assert.ok(toPeer >= 1 && toPeer <= 1 + Math.floor(ms / 1000), `1:1 peer got ${toPeer} typing notices in ${ms.toFixed(0)} ms`);
    for (const s of sessions) assert.deepEqual(s.all({ kind: 'error' }).map(brief), [], 'typing over the throttle: no error frame');
    for (const c of [...sessions, member, peer]) await c.close();
});

cluster.test('group: 10 join/leave ops by one user in a burst on a 70-member open group: the first applied, the rest rate_limited', async () => {
    const g = `#${cluster.name('ops')}`;
    await create(names[3], g, names.slice(4, 4 + BIG - 1));
    const user = names[76];
    const member = await connect(1, names[5]);
    const J = await connect(0, user);
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) J.send({ kind: 'group', op: i % 2 ? 'leave' : 'join', name: g });
    // the answers: a group frame per applied op (through the gateway channel,
    // so it may come after the errors answered directly), an error per refused one
    const answers = [];
    for (let i = 0; i < 10; i++) answers.push(await J.next((x) => x.kind === 'error' || (x.kind === 'group' && x.name === g), 15000));
    const ms = performance.now() - t0;
    const applied = answers.filter((x) => x.kind === 'group');
    for (const x of answers.filter((y) => y.kind === 'error')) assert.equal(x.code, 'rate_limited', brief(x));
    assert.ok(applied.length >= 1 && applied.length <= 1 + Math.floor(ms / 1000), `${applied.length} of 10 ops applied in ${ms.toFixed(0)} ms`);
    assert.equal(applied[0].op, 'join', `the first op (join) is applied: ${brief(applied[0])}`);
    assert.ok(applied[0].members.includes(user), 'joined');
    if (applied.length === 1) assert.equal(await cluster.redis('SISMEMBER', `parley:{g:${g}}:members`, user), 1, 'the rest changed nothing');
    await barrier(J, user, 'ops-b', member);
    const seen = member.all((x) => x.kind === 'group' && x.name === g && x.by === user).length;
    assert.equal(seen, applied.length, 'a member sees one group frame per applied op');
    await J.close();
    await member.close();
});

// reader R (two sessions) reads a message in group g; other: a member's client
async function readIn(g, sender, reader, other) {
    const S = await connect(0, sender);
    const R1 = await connect(0, reader);
    const R2 = await connect(1, reader);
    S.send({ kind: 'text', to: g, data: 'read me', cid: `rd-${g}` });
    const ack = await S.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === `rd-${g}`, 15000);
    assert.equal(ack.kind, 'ack', brief(ack));
    await R1.next({ kind: 'text', id: ack.id }, 15000);
    await other.next({ kind: 'text', id: ack.id }, 15000);
    R1.send({ kind: 'read', with: g, upto: ack.id });
    const own = await R2.next((x) => x.kind === 'read' && x.with === g, 15000);
    assert.equal(own.upto, ack.id, brief(own));
    await barrier(R1, reader, `rb-${g}`, other);
    const got = other.all((x) => x.kind === 'read' && x.with === g && x.from === reader);
    assert.equal(await cluster.redis('HGET', `parley:{u:${reader}}:read`, g), String(ack.id), 'the read position is stored');
    for (const c of [S, R1, R2]) await c.close();
    return got;
}

cluster.test("read: in a 70-member group the receipt reaches the reader's other session, not another member; in a 5-member group the members", async () => {
    const big = `#${cluster.name('rbig')}`;
    const small = `#${cluster.name('rsmall')}`;
    const bigMembers = names.slice(0, BIG).filter((n) => n !== names[10]);
    await create(names[10], big, bigMembers);
    await create(names[77], small, [names[11], names[12], names[13], names[14]]);
    const M = await connect(1, names[12]);
    const inBig = await readIn(big, names[10], names[11], M);
    assert.deepEqual(inBig.map(brief), [], 'a member of the big group gets no receipt');
    const inSmall = await readIn(small, names[77], names[11], M);
    assert.equal(inSmall.length, 1, 'a member of the small group gets the receipt');
    await M.close();
});
