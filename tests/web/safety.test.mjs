// The web client's share of "sessions and safety" (docs/protocol.md, v1
// additions), as pure state and HTTP logic: blocking (hello `blocked`,
// `block` frames, refusals), group roles (owner, admins, who may do what, a
// removed member's view), forward compatibility, the account API calls
// (api.js) and a session's device in words (agent.js). The socket side
// (4001, password renewal, errors tied to requests) is in connection.test.mjs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { T0, frame, helloWith, run } from './lib/frames.mjs';
import { describeAgent } from '../../web/src/lib/agent.js';
import { createApi, retryAfterSeconds, waitText } from '../../web/src/lib/api.js';
import { groupErrorText, groupRights, reduce, resendList, roleOf } from '../../web/src/lib/store.js';
import { ago, when } from '../../web/src/lib/time.js';

const hello = (o = {}) =>
    helloWith(
        [
            { username: 'bob', online: true, unread: 0 },
            { username: 'carol', online: true, unread: 0 },
        ],
        o,
    );
const group = (o, extra) => frame({ kind: 'group', name: '#team', by: 'alice', ...o }, extra);

describe('blocking', () => {
    it("hello's blocked list marks them and hides their presence; their online frames and typing change nothing", () => {
        let s = run([hello({ blocked: ['bob'] })]);
        assert.deepEqual(s.blocked, { bob: true });
        assert.equal(s.convs.bob.online, false, 'no presence of a blocked user, whatever the entry says');
        assert.equal(s.convs.carol.online, true);
        s = run([frame({ kind: 'online', from: 'bob' }), frame({ kind: 'typing', from: 'bob', to: 'alice' })], s);
        assert.equal(s.convs.bob.online, false);
        assert.deepEqual(s.convs.bob.typing, {});
        // absent or empty: nobody (a later hello is the whole list)
        s = run([hello({ blocked: [] })], s);
        assert.deepEqual(s.blocked, {});
        assert.deepEqual(run([hello()]).blocked, {});
    });

    it('blocking here or on another session (the block frame) marks the user and drops their presence; unblocking looks it up again', () => {
        let s = run([hello(), { type: 'block', user: 'bob', on: true }]);
        assert.deepEqual(s.blocked, { bob: true });
        assert.equal(s.convs.bob.online, false);
        s = run([frame({ kind: 'block', user: 'bob', on: false })], s);
        assert.deepEqual(s.blocked, {});
        assert.equal(s.convs.bob.known, false, 'presence to be looked up (/api/users) again');
        s = run([frame({ kind: 'block', user: 'carol', on: true })], s);
        assert.deepEqual(s.blocked, { carol: true });
        assert.equal(s.convs.carol.online, false);
        const same = run([frame({ kind: 'block', user: 'carol', on: true })], s);
        assert.equal(same, s, 'the echo of a change already made is nothing');
        // malformed block frames are ignored
        assert.equal(run([frame({ kind: 'block', user: 5, on: true }), frame({ kind: 'block', user: 'dave' })], s), s);
        // someone blocked who has no conversation yet
        s = run([frame({ kind: 'block', user: 'zed', on: true })], s);
        assert.equal(s.blocked.zed, true);
        assert.equal(s.convs.zed, undefined);
    });

    it('a text to someone who blocks this user fails as a refusal (no automatic re-send) and stops typing notices to them', () => {
        let s = run([hello(), { type: 'send', cid: 'k1', to: 'bob', data: 'hi', now: T0 }]);
        s = run([frame({ kind: 'error', code: 'forbidden', message: 'forbidden', cid: 'k1' })], s);
        assert.equal(s.outbox.k1.status, 'failed');
        assert.equal(s.outbox.k1.error, 'forbidden');
        assert.deepEqual(resendList(s), [], 'a refusal waits for the user');
        assert.equal(s.convs.bob.refused, true);
        assert.equal(s.notice, null);
        // bob unblocks and writes: typing to him again
        s = run([frame({ kind: 'text', id: 5, seq: 1, from: 'bob', to: 'alice', data: 'sorry', sent: T0 })], s);
        assert.equal(s.convs.bob.refused, false);
    });

    it('a refused typing notice says nothing; a refused group change says what failed', () => {
        let s = run([hello(), frame({ kind: 'error', code: 'forbidden', message: 'forbidden' }, { mode: { typing: 'bob' } })]);
        assert.equal(s.notice, null);
        assert.equal(s.convs.bob.refused, true);
        s = run(
            [frame({ kind: 'error', code: 'forbidden', message: 'only the owner and admins may remove members' }, { mode: { op: 'remove', name: '#team' } })],
            s,
        );
        assert.equal(s.notice.text, 'Could not remove members from #team: only the owner and admins may remove members.');
        s = run([frame({ kind: 'error', code: 'forbidden', message: 'nope' })], s);
        assert.equal(s.notice.text, 'Not allowed: nope');
        s = run([{ type: 'notice', text: '' }, frame({ kind: 'error', code: 'forbidden', message: 'x' }, { mode: { quiet: true } })], s);
        assert.equal(s.notice, null);
        assert.equal(
            groupErrorText({ op: 'promote', name: '#g' }, { code: 'rate_limited' }),
            'Could not make admins in #g: too many changes, try again in a moment.',
        );
        assert.equal(groupErrorText({ op: 'add', name: '#g' }, { code: 'forbidden', message: 'not allowed.' }), 'Could not add members to #g: not allowed.');
    });
});

describe('group roles', () => {
    const roles = (o = {}) => group({ op: 'create', members: ['alice', 'bob', 'carol', 'dave'], owner: 'alice', admins: ['bob'], ...o });

    it('group frames carry owner and admins; roleOf reads them', () => {
        const s = run([hello(), roles()]);
        const c = s.convs['#team'];
        assert.deepEqual([roleOf(c, 'alice'), roleOf(c, 'bob'), roleOf(c, 'carol')], ['owner', 'admin', 'member']);
        // a frame with an owner and no admins: none
        const t = run([hello(), roles({ admins: undefined })]);
        assert.deepEqual(t.convs['#team'].admins, []);
        // a server before roles: unknown, not "member"
        const u = run([hello(), group({ op: 'create', members: ['alice', 'bob'] })]);
        assert.equal(roleOf(u.convs['#team'], 'alice'), null);
    });

    it('the controls each role gets: owner all, admin removes plain members, member none (closed group)', () => {
        const c = run([hello(), roles()]).convs['#team'];
        const owner = groupRights(c, 'alice');
        assert.deepEqual([owner.add, owner.promote, owner.remove('bob'), owner.remove('carol'), owner.remove('alice')], [true, true, true, true, false]);
        const admin = groupRights(c, 'bob');
        assert.deepEqual([admin.add, admin.promote, admin.remove('alice'), admin.remove('carol'), admin.remove('bob')], [true, false, false, true, false]);
        const member = groupRights(c, 'carol');
        assert.deepEqual([member.add, member.promote, member.remove('dave')], [false, false, false]);
        // an open group: any member adds
        const open = run([hello(), roles({ open: true })]).convs['#team'];
        assert.equal(groupRights(open, 'carol').add, true);
        // roles unknown (a server before them): Add shown, the server decides; nothing else
        const old = run([hello(), group({ op: 'create', members: ['alice', 'bob'] })]).convs['#team'];
        assert.deepEqual([groupRights(old, 'bob').add, groupRights(old, 'bob').promote, groupRights(old, 'bob').remove('alice')], [true, false, false]);
    });

    it('promote / demote / remove of others update members and roles; a leaving owner hands over', () => {
        let s = run([hello(), roles()]);
        s = run([group({ op: 'promote', members: ['alice', 'bob', 'carol', 'dave'], owner: 'alice', admins: ['bob', 'carol'] })], s);
        assert.equal(roleOf(s.convs['#team'], 'carol'), 'admin');
        s = run([group({ op: 'demote', members: ['alice', 'bob', 'carol', 'dave'], owner: 'alice', admins: ['carol'] })], s);
        assert.equal(roleOf(s.convs['#team'], 'bob'), 'member');
        s = run([group({ op: 'remove', members: ['alice', 'bob', 'carol'], owner: 'alice', admins: ['carol'] })], s);
        assert.deepEqual(s.convs['#team'].members, ['alice', 'bob', 'carol']);
        assert.equal(s.convs['#team'].removed, null);
        assert.deepEqual(s.convs['#team'].preview, { from: 'alice', data: 'removed members', event: true });
        s = run([group({ op: 'leave', by: 'carol', members: ['alice', 'bob'], owner: 'alice', admins: [] })], s);
        assert.equal(roleOf(s.convs['#team'], 'carol'), 'member'); // no longer listed as admin
        // the owner (someone else's view): the new owner comes with the leave frame
        let b = run([hello({ user: 'bob' }), roles()]);
        b = run([group({ op: 'leave', by: 'alice', members: ['bob', 'carol', 'dave'], owner: 'bob', admins: [] })], b);
        assert.equal(roleOf(b.convs['#team'], 'bob'), 'owner');
        assert.equal(groupRights(b.convs['#team'], 'bob').promote, true);
    });

    it("a removed member keeps the conversation, read-only and saying so; nothing of the group changes it after; 'forget' drops it", () => {
        const me = 'carol';
        let s = run([hello({ user: me, users: [{ username: '#team', online: true, unread: 0 }] }), { type: 'open', key: '#team' }, roles()]);
        s = run([frame({ kind: 'text', id: 9, seq: 1, from: 'alice', to: '#team', data: 'before', sent: T0 })], s);
        s = run([group({ op: 'remove', members: ['alice', 'bob', 'dave'], owner: 'alice', admins: ['bob'] })], s);
        const c = s.convs['#team'];
        assert.deepEqual(c.removed, { by: 'alice' });
        assert.equal(c.joined, false);
        assert.equal(s.active, '#team', 'the open conversation stays open, to show what happened');
        assert.deepEqual(
            c.messages.map((m) => m.data),
            ['before'],
        );
        assert.deepEqual(c.preview, { from: 'alice', data: 'removed you', event: true });
        assert.deepEqual([groupRights(c, me).add, groupRights(c, me).remove('dave')], [false, false]);
        // a frame naming the removed explicitly (`removed`) counts the same
        const r = run([hello({ user: me }), roles(), group({ op: 'remove', removed: ['carol'], members: ['alice', 'bob', 'dave'] })]);
        assert.deepEqual(r.convs['#team'].removed, { by: 'alice' });
        s = run([{ type: 'forget', key: '#team' }], s);
        assert.equal(s.convs['#team'], undefined);
        assert.equal(s.active, null);
        // added again later: a member again
        s = run([group({ op: 'add', members: ['alice', 'bob', 'carol', 'dave'], owner: 'alice', admins: ['bob'] })], s);
        assert.equal(s.convs['#team'].removed, null);
        assert.equal(s.convs['#team'].joined, true);
    });

    // hello's group entries (a reload): owner (absent: none yet), admins (at
    // most 32, admins_more when cut), role (this user's own); no members
    const entry = (o = {}) => ({ username: '#team', online: true, unread: 0, owner: 'bob', admins: ['carol'], role: 'member', ...o });

    it("hello's owner, admins and role set the roles after a reload, with no join and no preview", () => {
        const s = run([hello({ users: [entry()] })]);
        const c = s.convs['#team'];
        assert.deepEqual([c.owner, c.admins, c.adminsMore, c.myRole, c.members], ['bob', ['carol'], false, 'member', null]);
        assert.deepEqual([roleOf(c, 'bob', 'alice'), roleOf(c, 'carol', 'alice'), roleOf(c, 'alice', 'alice')], ['owner', 'admin', 'member']);
        assert.equal(c.preview, null, 'no event preview: nothing happened');
        assert.deepEqual([groupRights(c, 'alice').known, groupRights(c, 'alice').add, groupRights(c, 'alice').promote], [true, false, false]);
        // the owner's view: every control
        const o = run([hello({ user: 'bob', users: [entry({ role: 'owner' })] })]).convs['#team'];
        assert.deepEqual([groupRights(o, 'bob').promote, groupRights(o, 'bob').remove('carol'), groupRights(o, 'bob').add], [true, true, true]);
        // an admin: removes plain members, not the owner
        const a = run([hello({ user: 'carol', users: [entry({ role: 'admin' })] })]).convs['#team'];
        assert.deepEqual(
            [groupRights(a, 'carol').remove('alice'), groupRights(a, 'carol').remove('bob'), groupRights(a, 'carol').promote],
            [true, false, false],
        );
        // `users` pages after hello carry the same
        const u = run([hello({ users: [], more: true }), frame({ kind: 'users', users: [entry({ role: 'admin', admins: ['alice', 'carol'] })], more: false })]);
        assert.equal(roleOf(u.convs['#team'], 'alice', 'alice'), 'admin');
    });

    it("admins cut (admins_more): this user's own role from `role`; others not listed are unknown, so no control on them", () => {
        const admins = Array.from({ length: 32 }, (_, i) => `a${String(i).padStart(2, '0')}`);
        const s = run([hello({ users: [entry({ owner: 'bob', admins, admins_more: true, role: 'admin' })] })]);
        const c = s.convs['#team'];
        assert.equal(c.adminsMore, true);
        assert.equal(roleOf(c, 'alice', 'alice'), 'admin', 'an admin beyond the 32 listed knows it from role');
        assert.equal(roleOf(c, 'zed', 'alice'), null, 'someone not listed: maybe an admin');
        assert.equal(roleOf(c, 'a05', 'alice'), 'admin');
        const r = groupRights(c, 'alice');
        assert.deepEqual([r.add, r.remove('zed'), r.remove('a05'), r.remove('bob')], [true, false, false, false]);
        // a group frame lists every admin: nothing unknown any more, own role from it
        const t = run([group({ op: 'add', by: 'bob', members: ['alice', 'bob', 'zed'], owner: 'bob', admins: ['zed'] })], s);
        const d = t.convs['#team'];
        assert.deepEqual([d.adminsMore, roleOf(d, 'alice', 'alice'), roleOf(d, 'zed', 'alice')], [false, 'member', 'admin']);
    });

    it('a group without an owner yet (from before roles): roles unknown, Add left to the server; a server without roles changes nothing', () => {
        const s = run([hello({ users: [entry({ owner: undefined, admins: [], role: 'member' })] })]);
        const c = s.convs['#team'];
        assert.equal(roleOf(c, 'alice', 'alice'), null);
        assert.deepEqual([groupRights(c, 'alice').add, groupRights(c, 'alice').promote, groupRights(c, 'alice').known], [true, false, false]);
        // an older server: entries without any of the fields
        const o = run([hello({ users: [{ username: '#team', online: true, unread: 0 }] })]).convs['#team'];
        assert.deepEqual([o.owner, o.admins, o.myRole, roleOf(o, 'alice', 'alice')], [null, null, null, null]);
        // hello entries that carry members and roles are used as they are
        const h = run([hello({ users: [{ username: '#team', online: true, unread: 0, members: ['alice', 'bob'], owner: 'alice', admins: ['bob'] }] })]);
        assert.equal(roleOf(h.convs['#team'], 'bob'), 'admin');
    });

    it('a reconnect hello updates the roles a group frame set; a later group frame updates them again', () => {
        let s = run([hello(), roles()]);
        assert.equal(roleOf(s.convs['#team'], 'bob', 'alice'), 'admin');
        // while away: alice handed over? no: bob was demoted and carol promoted
        s = run([hello({ users: [entry({ owner: 'alice', admins: ['carol'], role: 'owner' })] })], s);
        const c = s.convs['#team'];
        assert.deepEqual([roleOf(c, 'bob', 'alice'), roleOf(c, 'carol', 'alice'), c.myRole], ['member', 'admin', 'owner']);
        assert.deepEqual(c.members, ['alice', 'bob', 'carol', 'dave'], 'the members the frame gave are kept');
        s = run([group({ op: 'promote', members: ['alice', 'bob', 'carol', 'dave'], owner: 'alice', admins: ['bob', 'carol'] })], s);
        assert.equal(roleOf(s.convs['#team'], 'bob', 'alice'), 'admin');
    });
});

describe('forward compatibility', () => {
    it('unknown frame kinds change nothing; unknown fields are ignored', () => {
        const s0 = run([hello({ flavour: 'new', users: [{ username: 'bob', online: true, unread: 0, colour: 'red' }] })]);
        assert.equal(s0.convs.bob.online, true);
        assert.equal(reduce(s0, frame({ kind: 'sticker', from: 'bob', data: {} })), s0);
        assert.equal(reduce(s0, frame({ kind: 'session', id: 'x' })), s0);
        const s = run([frame({ kind: 'text', id: 3, seq: 1, from: 'bob', to: 'alice', data: 'x', sent: T0, glitter: true })], s0);
        assert.equal(s.convs.bob.messages.length, 1);
        assert.equal(s.convs.bob.messages[0].glitter, undefined);
    });
});

// A fetch stand-in that records requests and answers from a script.
function fakeFetch(answers) {
    const calls = [];
    const fn = async (path, init) => {
        calls.push({ path, ...init });
        const a = answers.shift() || { status: 200, body: '' };
        return {
            ok: a.status >= 200 && a.status < 300,
            status: a.status,
            headers: new Headers(a.headers || {}),
            text: async () => (a.body === undefined ? '' : typeof a.body === 'string' ? a.body : JSON.stringify(a.body)),
        };
    };
    return { fn, calls };
}

describe('account API (api.js)', () => {
    it('password change: JSON body {old_password, new_password}; each refusal in words, 429 with its Retry-After', async () => {
        const { fn, calls } = fakeFetch([
            { status: 200, body: { username: 'alice', token: 't' } },
            { status: 401, body: { error: 'bad_credentials', message: 'wrong password' } },
            { status: 400, body: { error: 'invalid_password', message: 'new_password: 8 to 1024 bytes' } },
            { status: 429, body: { error: 'rate_limited' }, headers: { 'Retry-After': '30' } },
            { status: 429, body: { error: 'rate_limited' }, headers: { 'Retry-After': '120' } },
            { status: 429, body: { error: 'rate_limited' } },
            { status: 401, body: { error: 'unauthorized', message: 'missing, invalid or expired token' } },
        ]);
        const api = createApi(fn);
        const ok = await api.password('old secret 1', 'new secret 2');
        assert.equal(ok.ok, true);
        assert.deepEqual(calls[0], {
            path: '/api/password',
            method: 'POST',
            credentials: 'same-origin',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ old_password: 'old secret 1', new_password: 'new secret 2' }),
        });
        assert.equal((await api.password('a', 'b')).error, 'The current password is wrong.');
        assert.equal((await api.password('a', 'b')).error, 'The new password must have 8 to 1024 characters.');
        const limited = await api.password('a', 'b');
        assert.deepEqual(
            [limited.status, limited.code, limited.retryAfter, limited.error],
            [429, 'rate_limited', 30, 'Too many attempts. Try again in 30 seconds.'],
        );
        assert.equal((await api.password('a', 'b')).error, 'Too many attempts. Try again in 2 minutes.');
        assert.equal((await api.password('a', 'b')).error, 'Too many attempts. Wait a moment and try again.');
        assert.equal((await api.password('a', 'b')).error, 'Your session has expired. Please log in again.', 'not "wrong password"');
    });

    it('sessions, revoke, log out everywhere: the routes and methods of the contract, no token anywhere', async () => {
        const list = [{ id: 's1', created: T0, last_seen: T0, agent: 'x', current: true }];
        const { fn, calls } = fakeFetch([{ status: 200, body: list }, { status: 204 }, { status: 404, body: { error: 'not_found' } }, { status: 204 }]);
        const api = createApi(fn);
        assert.deepEqual((await api.sessions()).data, list);
        assert.equal((await api.revokeSession('a/b c')).ok, true);
        const gone = await api.revokeSession('s9');
        assert.deepEqual([gone.ok, gone.error], [false, 'That session has ended already.']);
        assert.equal((await api.logoutAll()).ok, true);
        assert.deepEqual(
            calls.map((c) => `${c.method} ${c.path}`),
            ['GET /api/sessions', 'DELETE /api/sessions/a%2Fb%20c', 'DELETE /api/sessions/s9', 'POST /api/logout-all'],
        );
        for (const c of calls) {
            assert.equal(c.credentials, 'same-origin', 'the cookie authenticates');
            assert.equal(c.body, undefined);
            assert.deepEqual(c.headers, {});
            assert.doesNotMatch(c.path, /token/);
        }
    });

    it('a throttled login says how long to wait; Retry-After as seconds or a date', async () => {
        const { fn } = fakeFetch([{ status: 429, body: { error: 'rate_limited' }, headers: { 'retry-after': '1' } }]);
        assert.equal((await createApi(fn).login('alice', 'whatever1')).error, 'Too many attempts. Try again in 1 second.');
        assert.equal(retryAfterSeconds('7'), 7);
        assert.equal(retryAfterSeconds(new Date(T0 + 90_000).toUTCString(), T0), 90);
        assert.equal(retryAfterSeconds('soon'), 0);
        assert.equal(retryAfterSeconds(null), 0);
        assert.equal(waitText(59), '59 seconds');
        assert.equal(waitText(61), '2 minutes');
    });
});

describe('sessions list words', () => {
    it('a device from its agent string', () => {
        const ua = {
            chromeLinux: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
            headless: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36',
            firefoxWin: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0',
            safariIphone:
                'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
            edgeMac: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0',
            chromeAndroid: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
        };
        assert.equal(describeAgent(ua.chromeLinux), 'Chrome on Linux');
        assert.equal(describeAgent(ua.headless), 'Headless Chrome on Linux');
        assert.equal(describeAgent(ua.firefoxWin), 'Firefox on Windows');
        assert.equal(describeAgent(ua.safariIphone), 'Safari on iPhone');
        assert.equal(describeAgent(ua.edgeMac), 'Edge on macOS');
        assert.equal(describeAgent(ua.chromeAndroid), 'Chrome on Android');
        assert.equal(describeAgent('curl/8.5.0'), 'curl');
        assert.equal(describeAgent('node'), 'node');
        assert.equal(describeAgent(''), 'Unknown device');
        assert.equal(describeAgent(undefined), 'Unknown device');
    });

    it('last seen in words', () => {
        const now = new Date(2026, 10, 30, 15, 0).getTime();
        assert.equal(ago(now - 20_000, now), 'just now');
        assert.equal(ago(now - 5 * 60_000, now), '5 min ago');
        assert.equal(ago(now - 3 * 3600_000, now), '3 h ago');
        assert.equal(ago(new Date(2026, 10, 29, 8, 5).getTime(), now), 'yesterday at 08:05');
        assert.equal(ago(new Date(2026, 10, 3, 17, 0).getTime(), now), '3 Nov at 17:00');
        assert.equal(when(new Date(2026, 10, 30, 12, 38).getTime(), now), 'today at 12:38');
        assert.equal(ago(0, now), 'unknown');
    });
});
