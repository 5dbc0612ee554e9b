// block {user, on} (protocol.md "v1 additions: sessions and safety", Block):
// refusals both ways, the blocker's other sessions told, hello's `blocked`,
// presence hidden both ways (live frames, hello, GET /api/users), unblock
// showing it again, the cap (--max-blocks). Cluster: redis, router, gw1, gw2
// (--max-blocks 3).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, brief, sendAck } from './lib/client.mjs';
import { Cluster } from './lib/cluster.mjs';

const cluster = new Cluster('block', { gatewayArgs: ['--max-blocks', '3'] });
before(() => cluster.start());
after(() => cluster.stop());

let n = 0;
const cid = () => `bl-${++n}`;
const users = (...bases) => cluster.users(bases);

// c sends block {user, on}; resolves with the block frame c gets back (its answer)
async function block(c, user, on = true) {
    c.send({ kind: 'block', user, on });
    const f = await c.next((x) => (x.kind === 'block' && x.user === user) || x.kind === 'error');
    assert.deepEqual([f.kind, f.user, f.on], ['block', user, on], brief(f));
    return f;
}

async function search(token, q) {
    const res = await fetch(`http://127.0.0.1:${cluster.gw(1)}/api/users?q=${q}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    return Object.fromEntries((await res.json()).map((u) => [u.username, u.online]));
}

cluster.test('block frame: bad fields, yourself, an unknown user', async () => {
    const [a] = await users('bf');
    const A = await Client.connect(cluster.gw(0), a.token);
    for (const [f, field] of [
        [{ kind: 'block', on: true }, 'user'],
        [{ kind: 'block', user: 'Not A Name', on: true }, 'user'],
        [{ kind: 'block', user: a.name }, 'on'],
        [{ kind: 'block', user: a.name, on: 1 }, 'on'],
        [{ kind: 'block', user: a.name, on: true }, 'user'],
    ]) {
        A.send(f);
        const e = await A.next((x) => x.kind === 'error');
        assert.ok(e.code === 'bad_field' && e.message.includes(field), `${JSON.stringify(f)}: ${brief(e)}`);
    }
    A.send({ kind: 'block', user: 'no-such-user-here', on: true });
    assert.equal((await A.next((x) => x.kind === 'error')).code, 'no_such_user');
    await block(A, 'no-such-user-here', false); // unblocking anyone is fine
});

cluster.test('while A blocks B: B text/typing to A and A to B forbidden, B cannot put A in a group; A other sessions told; B told nothing', async () => {
    const [a, b, c] = await users('ba', 'bb', 'bc');
    const A1 = await Client.connect(cluster.gw(0), a.token);
    const A2 = await Client.connect(cluster.gw(1), a.token);
    const B = await Client.connect(cluster.gw(1), b.token);
    const C = await Client.connect(cluster.gw(0), c.token);
    await sendAck(B, a.name, 'before', cid());
    await A1.next({ kind: 'text', data: 'before' });
    await A2.next({ kind: 'text', data: 'before' });
    await block(A1, b.name);
    const other = await A2.next({ kind: 'block' });
    assert.deepEqual([other.user, other.on], [b.name, true], "A's other session (other gateway) told");

    const k = cid();
    B.send({ kind: 'text', to: a.name, data: 'let me in', cid: k });
    const e = await B.next((x) => x.kind === 'error' || x.kind === 'ack');
    assert.deepEqual([e.kind, e.code, e.cid], ['error', 'forbidden', k], brief(e));
    B.send({ kind: 'typing', to: a.name });
    assert.equal((await B.next((x) => x.kind === 'error')).code, 'forbidden', 'typing refused');
    A1.send({ kind: 'typing', to: b.name });
    assert.equal((await A1.next((x) => x.kind === 'error')).code, 'forbidden', "the blocker's typing refused too");
    const k2 = cid();
    A1.send({ kind: 'text', to: b.name, data: 'one word', cid: k2 });
    assert.deepEqual(await A1.next((x) => x.cid === k2).then((x) => [x.kind, x.code]), ['error', 'forbidden'], 'the blocker cannot write either');

    const g = `#${cluster.name('bg')}`;
    B.send({ kind: 'group', op: 'create', name: g, members: [c.name, a.name] });
    assert.equal((await B.next((x) => x.kind === 'error' || x.kind === 'group')).code, 'forbidden', 'create naming A');
    const open = await cluster.createGroup(B, 'bo', [c.name], true);
    B.send({ kind: 'group', op: 'add', name: open, members: [a.name] });
    assert.equal((await B.next((x) => x.kind === 'error' || (x.kind === 'group' && x.op === 'add'))).code, 'forbidden', 'add of A');
    // A may still share groups with B: A creates one with B
    const mine = await cluster.createGroup(A1, 'ba', [b.name]);
    assert.ok((await B.next({ kind: 'group', name: mine })).members.includes(a.name));

    await sendAck(C, a.name, 'others still write to A', cid());
    await A1.next({ kind: 'text', data: 'others still write to A' });
    await A1.expectNone((x) => (x.kind === 'text' || x.kind === 'typing') && x.from === b.name, 300, 'anything from B');
    await A2.expectNone((x) => (x.kind === 'text' || x.kind === 'typing') && x.from === b.name, 0);
    await B.expectNone({ kind: 'block' }, 0, 'a block frame at B');
    B.send({ kind: 'history', with: a.name });
    const h = await B.next({ kind: 'history' });
    assert.deepEqual(
        h.messages.map((m) => m.data),
        ['before'],
        'nothing stored while blocked; history before the block stays readable',
    );

    await block(A2, b.name, false);
    assert.equal((await A1.next({ kind: 'block' })).on, false, 'unblock told to the other session');
    await sendAck(B, a.name, 'after', cid());
    await A1.next({ kind: 'text', data: 'after' });
});

cluster.test('hello: `blocked` lists whom the user blocks; the blocked and the blocker see each other offline', async () => {
    const [a, b] = await users('ha', 'hb');
    const A = await Client.connect(cluster.gw(0), a.token);
    assert.ok(!A.hello.blocked || A.hello.blocked.length === 0, `no blocks: ${brief(A.hello)}`);
    const B = await Client.connect(cluster.gw(1), b.token);
    await block(A, b.name);
    const A2 = await Client.connect(cluster.gw(1), a.token);
    assert.deepEqual(A2.hello.blocked, [b.name]);
    const entry = (c, name) => c.hello.users.find((u) => u.username === name);
    assert.equal(entry(A2, b.name).online, false, 'B online, shown offline to A');
    const B2 = await Client.connect(cluster.gw(0), b.token);
    assert.equal(entry(B2, a.name).online, false, 'A online, shown offline to B');
    assert.ok(!B2.hello.blocked || B2.hello.blocked.length === 0, 'B blocks nobody');
    await block(A, b.name, false);
    const A3 = await Client.connect(cluster.gw(0), a.token);
    assert.ok(!A3.hello.blocked || A3.hello.blocked.length === 0, 'unblocked');
    assert.equal(entry(A3, b.name).online, true, 'shown online again');
    await B.close();
});

cluster.test('presence hidden both ways at once, across gateways; unblock sends the current state; a bystander sees everything', async () => {
    const [a, b, w] = await users('pa', 'pb', 'pw');
    const A = await Client.connect(cluster.gw(0), a.token);
    const W = await Client.connect(cluster.gw(0), w.token); // A's gateway: a witness of B's presence
    const V = await Client.connect(cluster.gw(1), w.token); // B's gateway: a witness of A's presence
    let B = await Client.connect(cluster.gw(1), b.token);
    await A.next({ kind: 'online', from: b.name });
    await block(A, b.name);
    // at the moment of the block: each side is told the other is offline (as hello would say now)
    await A.next({ kind: 'offline', from: b.name });
    await B.next({ kind: 'offline', from: a.name });
    await B.close();
    await W.next({ kind: 'offline', from: b.name });
    B = await Client.connect(cluster.gw(1), b.token);
    await W.next({ kind: 'online', from: b.name });
    await A.expectNone((x) => (x.kind === 'online' || x.kind === 'offline') && x.from === b.name, 200, "B's presence at A");
    const A2 = await Client.connect(cluster.gw(1), a.token);
    await A2.close();
    // A's first session keeps A online: no change to announce. A2 was a second
    // session; close A too and come back to make A's presence change.
    await A.close();
    await V.next({ kind: 'offline', from: a.name });
    const A3 = await Client.connect(cluster.gw(0), a.token);
    await V.next({ kind: 'online', from: a.name });
    await B.expectNone((x) => (x.kind === 'online' || x.kind === 'offline') && x.from === a.name, 200, "A's presence at B");
    // unblock: both told the other's current state at once
    await block(A3, b.name, false);
    await A3.next({ kind: 'online', from: b.name });
    await B.next({ kind: 'online', from: a.name });
    await B.close();
    await A3.next({ kind: 'offline', from: b.name });
});

cluster.test('GET /api/users finds a blocked or blocking user, always offline; others see the real state', async () => {
    const [a, b, c] = await users('sa', 'sb', 'sc');
    const A = await Client.connect(cluster.gw(0), a.token);
    const B = await Client.connect(cluster.gw(1), b.token);
    await block(A, b.name);
    const fromB = await search(b.token, a.name);
    assert.equal(fromB[a.name], false, `A is online, hidden from B: ${JSON.stringify(fromB)}`);
    const fromA = await search(a.token, b.name);
    assert.equal(fromA[b.name], false, 'B is online, hidden from A');
    const fromC = await search(c.token, 's');
    assert.ok(fromC[a.name] === true && fromC[b.name] === true, `C sees both online: ${JSON.stringify(fromC)}`);
    await block(A, b.name, false);
    assert.equal((await search(b.token, a.name))[a.name], true, 'shown again');
    await B.close();
});

cluster.test('--max-blocks: one block past it is forbidden; after an unblock there is room again', async () => {
    const [a, ...others] = await users('ma', 'm1', 'm2', 'm3', 'm4');
    const A = await Client.connect(cluster.gw(0), a.token);
    for (const o of others.slice(0, 3)) await block(A, o.name);
    await block(A, others[0].name); // again: no new block
    A.send({ kind: 'block', user: others[3].name, on: true });
    const e = await A.next((x) => x.kind === 'error' || x.kind === 'block');
    assert.deepEqual([e.kind, e.code], ['error', 'forbidden'], brief(e));
    await block(A, others[1].name, false);
    await block(A, others[3].name);
    const A2 = await Client.connect(cluster.gw(1), a.token);
    assert.deepEqual(A2.hello.blocked, [others[0].name, others[2].name, others[3].name].sort());
});

cluster.test('beyond the everyone limit: a group member learned from a group frame is checked once, then hidden (or shown) as the block says', async () => {
    // a third gateway where nobody counts as everyone's contact: A follows the
    // members of its groups as the group frames teach them, not from hello
    const gw = await cluster.startGateway({ args: ['--everyone-limit', '1'] });
    const port = cluster.gw(gw.index);
    const [a, b, c, d] = await users('la', 'lb', 'lc', 'ld');
    const B0 = await Client.connect(cluster.gw(0), b.token);
    await block(B0, a.name); // B blocks A, before A's session
    await B0.close();
    const A = await Client.connect(port, a.token);
    const W = await Client.connect(port, c.token); // a witness on A's gateway
    const g = await cluster.createGroup(W, 'lg', [a.name, b.name, d.name]);
    await A.next({ kind: 'group', name: g });
    for (let i = 0; i < 2; i++) {
        const B = await Client.connect(cluster.gw(1), b.token);
        const D = await Client.connect(cluster.gw(1), d.token);
        await W.next({ kind: 'online', from: b.name });
        await W.next({ kind: 'online', from: d.name });
        await A.next({ kind: 'online', from: d.name }); // shown: checked, then the state
        await B.close();
        await D.close();
        await W.next({ kind: 'offline', from: b.name });
        await W.next({ kind: 'offline', from: d.name });
        await A.next({ kind: 'offline', from: d.name });
    }
    await A.expectNone((x) => (x.kind === 'online' || x.kind === 'offline') && x.from === b.name, 200, "B's presence at A");
});
