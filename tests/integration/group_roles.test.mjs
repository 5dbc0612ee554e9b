// Group roles (protocol.md "v1 additions: sessions and safety", Group roles):
// the creator owns the group, group frames carry owner and admins, promote /
// demote (owner only), remove (owner or admins; an admin removes neither the
// owner nor another admin), add to a closed group (owner or admins), a removed
// member gets the remove frame and nothing after it, the owner's heir on leave.
// Members are spread over two gateways. Cluster: redis, router, gw1, gw2.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, brief, sendAck } from './lib/client.mjs';
import { Cluster } from './lib/cluster.mjs';

const cluster = new Cluster('group_roles');
before(() => cluster.start());
after(() => cluster.stop());

let n = 0;
const cid = () => `gr-${++n}`;
const users = (...bases) => cluster.users(bases);

// connects user u on gateway port (c.user: its name)
async function connect(port, u) {
    const c = await Client.connect(port, u.token);
    c.user = u.name;
    return c;
}

// connects each user, alternating gateways
async function connectAll(us) {
    const out = [];
    for (const [i, u] of us.entries()) out.push(await connect(cluster.gw(i % 2), u));
    return out;
}

// c sends a group op; resolves with the group frame of c's change (the frames
// of earlier changes left as they are) or the error
async function op(c, g, o, members) {
    c.send({ kind: 'group', op: o, name: g, ...(members ? { members } : {}) });
    return c.next((x) => (x.kind === 'group' && x.name === g && x.op === o && x.by === c.user) || x.kind === 'error');
}

async function refused(c, g, o, members, what) {
    const f = await op(c, g, o, members);
    assert.deepEqual([f.kind, f.code], ['error', 'forbidden'], `${what}: ${brief(f)}`);
}

cluster.test('the creator is the owner; frames carry owner and admins; promote/demote by the owner only', async () => {
    const [o, m1, m2] = await users('ow', 'ma', 'mb');
    const [O, M1, M2] = await connectAll([o, m1, m2]);
    const g = await cluster.createGroup(O, 'rg', [m1.name, m2.name]);
    const created = await M1.next({ kind: 'group', name: g });
    assert.deepEqual([created.owner, created.admins], [o.name, []], brief(created));
    await refused(M1, g, 'promote', [m2.name], 'a member promotes');
    let f = await op(O, g, 'promote', [m1.name]);
    assert.deepEqual([f.kind, f.owner, f.admins, f.by], ['group', o.name, [m1.name], o.name], brief(f));
    f = await M2.next({ kind: 'group', name: g, op: 'promote' });
    assert.deepEqual(f.admins, [m1.name], 'every member told');
    const gr = await cluster.cli(['group', g]);
    assert.ok(gr.ok, gr.stderr);
    assert.match(gr.stdout, new RegExp(`owner ${o.name}`));
    assert.match(gr.stdout, new RegExp(`${m1.name}\\s+(online|offline)\\s+unread=\\d+ read=\\d+ admin`));
    await refused(M1, g, 'promote', [m2.name], 'an admin promotes');
    await refused(M1, g, 'demote', [m1.name], 'an admin demotes');
    O.send({ kind: 'group', op: 'promote', name: g, members: ['no-such-member'] });
    assert.equal((await O.next((x) => x.kind === 'error')).code, 'no_such_user', 'promote a non-member');
    // nothing changed: the frame to the asking session only
    f = await op(O, g, 'promote', [m1.name, o.name]);
    assert.deepEqual([f.kind, f.admins], ['group', [m1.name]], 'promoting an admin or the owner changes nothing');
    f = await op(O, g, 'demote', [m1.name]);
    assert.deepEqual(f.admins, [], brief(f));
    await M1.next({ kind: 'group', name: g, op: 'demote' });
    O.send({ kind: 'group', op: 'promote', name: g });
    assert.equal((await O.next((x) => x.kind === 'error')).code, 'bad_field', 'promote without members');
    O.send({ kind: 'group', op: 'demote', name: g, members: [] });
    assert.equal((await O.next((x) => x.kind === 'error')).code, 'bad_field', 'demote with no member');
    O.send({ kind: 'group', op: 'crown', name: g, members: [m1.name] });
    assert.equal((await O.next((x) => x.kind === 'error')).code, 'bad_field', 'an unknown op');
});

cluster.test('a closed group: only the owner and admins add; an open group: any member', async () => {
    const [o, m, x, y, z] = await users('co', 'cm', 'cx', 'cy', 'cz');
    const [O, M] = await connectAll([o, m]);
    const g = await cluster.createGroup(O, 'closed', [m.name]);
    await refused(M, g, 'add', [x.name], 'a member adds to a closed group');
    await op(O, g, 'promote', [m.name]);
    let f = await op(M, g, 'add', [x.name]);
    assert.ok(f.kind === 'group' && f.members.includes(x.name), `an admin adds: ${brief(f)}`);
    f = await op(O, g, 'add', [y.name]);
    assert.ok(f.kind === 'group' && f.members.includes(y.name), `the owner adds: ${brief(f)}`);
    const X = await connect(cluster.gw(1), x);
    await refused(X, g, 'add', [z.name], 'the new plain member adds');
    X.send({ kind: 'group', op: 'join', name: g });
    assert.equal((await X.next((e) => e.kind === 'group' || e.kind === 'error')).kind, 'group', 'join of a member: the frame');
    const open = await cluster.createGroup(O, 'open', [m.name], true);
    f = await op(M, open, 'add', [z.name]);
    assert.ok(f.kind === 'group' && f.members.includes(z.name), `any member adds to an open group: ${brief(f)}`);
});

cluster.test('remove: owner or admins; an admin removes neither the owner nor another admin; nobody removes himself', async () => {
    const [o, a1, a2, m] = await users('ro', 'ra', 'rb', 'rm');
    const [O, A1, A2, M] = await connectAll([o, a1, a2, m]);
    const g = await cluster.createGroup(O, 'rem', [a1.name, a2.name, m.name]);
    await op(O, g, 'promote', [a1.name, a2.name]);
    await refused(M, g, 'remove', [a1.name], 'a plain member removes');
    await refused(A1, g, 'remove', [o.name], 'an admin removes the owner');
    await refused(A1, g, 'remove', [a2.name], 'an admin removes another admin');
    await refused(A1, g, 'remove', [m.name, a2.name], 'the whole frame refused');
    await refused(O, g, 'remove', [o.name], 'the owner removes himself');
    await refused(A1, g, 'remove', [a1.name], 'an admin removes himself');
    M.send({ kind: 'history', with: g });
    assert.equal((await M.next({ kind: 'history' })).with, g, 'm is still a member after the refusals');
    let f = await op(A1, g, 'remove', [m.name, 'not-a-member']);
    assert.deepEqual([f.kind, f.removed, f.members.includes(m.name)], ['group', [m.name], false], brief(f));
    f = await op(O, g, 'remove', [a2.name]);
    assert.deepEqual([f.removed, f.admins], [[a2.name], [a1.name]], 'the owner removes an admin: no longer admin');
    await A2.next({ kind: 'group', name: g, op: 'remove' });
    f = await op(O, g, 'remove', [m.name]);
    assert.deepEqual([f.kind, f.removed], ['group', undefined], `removing a non-member changes nothing: ${brief(f)}`);
});

cluster.test('a removed member gets the remove frame and nothing of the group after it (texts, typing, receipts, changes, hello)', async () => {
    const [o, r, s, t] = await users('xo', 'xr', 'xs', 'xt');
    const [O, R, S] = await connectAll([o, r, s]);
    const R2 = await connect(cluster.gw(0), r); // a second session of R, other gateway
    const g = await cluster.createGroup(O, 'kick', [r.name, s.name]);
    await sendAck(S, g, 'before', cid());
    for (const c of [R, R2]) await c.next({ kind: 'text', data: 'before' });
    await op(O, g, 'remove', [r.name]);
    const mark = new Map();
    for (const c of [R, R2]) {
        const f = await c.next({ kind: 'group', name: g, op: 'remove' });
        assert.deepEqual([f.removed, f.members.includes(r.name)], [[r.name], false], brief(f));
        mark.set(c, c.frames.indexOf(f));
    }
    await sendAck(S, g, 'after', cid());
    S.send({ kind: 'typing', to: g });
    S.send({ kind: 'read', with: g, upto: 1 });
    await op(O, g, 'add', [t.name]);
    await O.next({ kind: 'text', data: 'after' });
    await O.next({ kind: 'typing', from: s.name });
    await S.next({ kind: 'group', name: g, op: 'add' });
    await new Promise((resolve) => setTimeout(resolve, 300)); // absence: a short window
    for (const c of [R, R2]) {
        const late = c.frames.slice(mark.get(c) + 1).filter((x) => x.name === g || x.to === g || x.with === g);
        assert.deepEqual(late.map(brief), [], `nothing of ${g} after the remove`);
    }
    const k = cid();
    R.send({ kind: 'text', to: g, data: 'still here?', cid: k });
    const e = await R.next((x) => x.cid === k);
    assert.deepEqual([e.kind, e.code], ['error', 'forbidden'], brief(e));
    R.send({ kind: 'history', with: g });
    assert.equal((await R.next((x) => x.kind === 'error' || x.kind === 'history')).code, 'forbidden', 'history refused');
    R.send({ kind: 'group', op: 'join', name: g });
    assert.equal((await R.next((x) => x.kind === 'error' || (x.kind === 'group' && x.op === 'join'))).code, 'forbidden', 'a closed group: no way back alone');
    const R3 = await Client.connect(cluster.gw(1), r.token);
    assert.ok(!R3.hello.users.some((u) => u.username === g), 'the group is gone from his hello');
});

cluster.test('the owner leaves: the admin promoted earliest inherits, else the earliest member; the leave frame names the heir', async () => {
    const [o, a, b, m1, m2] = await users('ho', 'ha', 'hb', 'hm', 'hn');
    const [O, A, B, M1, M2] = await connectAll([o, a, b, m1, m2]);
    const g = await cluster.createGroup(O, 'heir', [m1.name, b.name, a.name, m2.name]);
    await op(O, g, 'promote', [b.name]);
    await op(O, g, 'promote', [a.name]);
    await op(O, g, 'leave');
    let f = await M1.next({ kind: 'group', name: g, op: 'leave' });
    assert.deepEqual([f.by, f.owner, f.admins], [o.name, b.name, [a.name]], `b was promoted first: ${brief(f)}`);
    f = await op(B, g, 'demote', [a.name]);
    assert.equal(f.kind, 'group', 'the heir has the rights of the owner');
    await op(B, g, 'leave');
    f = await M2.next({ kind: 'group', name: g, op: 'leave', by: b.name });
    // no admin left: the earliest member (create order: the members as named, after the creator)
    assert.deepEqual([f.owner, f.admins], [m1.name, []], brief(f));
    await op(M1, g, 'leave');
    f = await A.next({ kind: 'group', name: g, op: 'leave', by: m1.name });
    assert.equal(f.owner, a.name, `then a: ${brief(f)}`);
    await op(A, g, 'leave');
    f = await M2.next({ kind: 'group', name: g, op: 'leave', by: a.name });
    assert.equal(f.owner, m2.name);
    await op(M2, g, 'leave'); // the last one: the group goes
    O.send({ kind: 'group', op: 'join', name: g });
    assert.equal((await O.next((x) => x.kind === 'error')).code, 'no_such_user', 'deleted');
});

cluster.test('a group from before roles: its creator (if still a member) is the owner at its next op', async () => {
    const [c, m1, m2, x] = await users('lo', 'l1', 'l2', 'lx');
    const g = `#${cluster.name('legacy')}`;
    await cluster.redis('SADD', `parley:{g:${g}}:members`, c.name, m1.name, m2.name);
    for (const u of [c, m1, m2]) await cluster.redis('SADD', `parley:{u:${u.name}}:groups`, g);
    await cluster.redis('HSET', `parley:{g:${g}}:meta`, 'open', '0', 'created', '1', 'by', c.name, 'gen', '1');
    const [M1, C] = await connectAll([m1, c]);
    await refused(M1, g, 'add', [x.name], 'a plain member of a closed legacy group');
    const f = await op(C, g, 'add', [x.name]);
    assert.deepEqual([f.kind, f.owner, f.admins], ['group', c.name, []], brief(f));
    assert.equal((await M1.next({ kind: 'group', name: g, op: 'add' })).owner, c.name);
});

cluster.test("hello's group entries carry owner, admins and the user's own role (a reload needs no join); people's entries none", async () => {
    const [o, a, m] = await users('ho', 'ha', 'hm');
    const [O, A, M] = await connectAll([o, a, m]);
    const g = await cluster.createGroup(O, 'hr', [a.name, m.name]);
    await A.next({ kind: 'group', name: g });
    assert.equal((await op(O, g, 'promote', [a.name])).kind, 'group');
    const entryOf = (c) => c.hello.users.find((u) => u.username === g);
    for (const [u, role] of [
        [o, 'owner'],
        [a, 'admin'],
        [m, 'member'],
    ]) {
        const c = await connect(cluster.gw(1), u);
        const e = entryOf(c);
        assert.deepEqual([e.owner, e.admins, e.role, e.admins_more], [o.name, [a.name], role, undefined], `${u.name}: ${brief(e)}`);
        const person = c.hello.users.find((x) => !x.username.startsWith('#'));
        if (person) assert.deepEqual([person.owner, person.admins, person.role], [undefined, undefined, undefined], 'a person: none');
        await c.close();
    }
    for (const c of [O, A, M]) await c.close();
});
